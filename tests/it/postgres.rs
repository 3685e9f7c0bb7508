//! The PostgreSQL adapter against a real database: the storage contract suite and the
//! runtime suite, then what only a real database shows — migrations, the schema option,
//! concurrency of claims across connections and stores, wake-ups, transactional enqueue,
//! recovery from killed connections — and the differential simulation against the in-memory
//! adapter (`postgres/simulation.rs`).

mod cron_race;
mod floors;
mod limits_race;
mod operate_race;
mod plans;
mod rebuild;
mod schema;
mod simulation;
mod unique_race;

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{
    Created, Duration, Namespace, NewTask, Outcome, Page, QueueMeta, QueueName, QueuePatch, Status,
    TaskFilter, TaskMeta, TickerMeta, TickerName, WorkerName,
};
use pgqueue_ports::{ManualClock, StorageClock, Store, StoreError, TickerScope, Wakeup};
use pgqueue_postgres::{PgOptions, PgStore, enqueue_in};
use pgqueue_tests::contract::Subject;
use pgqueue_tests::db::fresh_database;
use pgqueue_tests::runtime::Realtime;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// A fresh database and a store on it, on the test's clock (the database lives as long as the
/// subject).
pub async fn subject(clock: Arc<ManualClock>) -> Subject {
    let db = fresh_database().await;
    let store = db.store(clock.clone()).await;
    Subject {
        store: Arc::new(store),
        clock,
        guard: Box::new(db),
    }
}

/// A fresh database and a store on the database's own clock.
pub async fn realtime() -> Realtime {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    Realtime {
        store: Arc::new(store),
        guard: Box::new(db),
    }
}

mod contract {
    pgqueue_tests::store_contract_tests!(super::subject);
}

/// A store as it runs behind a transaction-mode pooler (`prepared: false`: every statement
/// in a transaction of its own, nothing kept prepared, the schema set by `SET LOCAL`), so
/// the whole contract holds in that mode too. PgBouncer itself is in `pgbouncer.rs`.
pub async fn unprepared_subject(clock: Arc<ManualClock>) -> Subject {
    let db = fresh_database().await;
    let store = db
        .store_with(PgOptions {
            pool_size: 4,
            clock: clock.clone(),
            prepared: false,
            schema: Some("pooled".into()),
            ..PgOptions::default()
        })
        .await;
    Subject {
        store: Arc::new(store),
        clock,
        guard: Box::new(db),
    }
}

mod unprepared_contract {
    pgqueue_tests::store_contract_tests!(super::unprepared_subject);
}

mod runtime {
    pgqueue_tests::runtime_tests!(super::realtime);
}

fn ns(s: &str) -> Namespace {
    Namespace::parse(s).unwrap()
}
fn queue(s: &str) -> QueueName {
    QueueName::parse(s).unwrap()
}
fn worker(s: &str) -> WorkerName {
    WorkerName::parse(s).unwrap()
}
fn task(payload: serde_json::Value) -> NewTask {
    TaskMeta::new(payload).validate().unwrap()
}
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc()
}
fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t0()))
}

/// Runs one SQL query returning one text column on a fresh connection.
async fn strings(url: &str, sql: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}

#[tokio::test]
async fn migrations_are_idempotent_and_survive_a_concurrent_start() {
    let db = fresh_database().await;
    let options = || PgOptions {
        pool_size: 2,
        ..PgOptions::default()
    };
    let (a, b) = tokio::join!(
        PgStore::connect(db.url(), options()),
        PgStore::connect(db.url(), options())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let c = PgStore::connect(db.url(), options()).await.unwrap();
    let versions = strings(
        db.url(),
        "SELECT version FROM __diesel_schema_migrations ORDER BY version",
    )
    .await;
    // One row per folder of migrations/ (its name without dashes up to the underscore).
    let mut expected: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| name.split_once('_').map(|(v, _)| v.replace('-', "")))
            .collect();
    expected.sort();
    assert!(expected.len() >= 4, "{expected:?}");
    assert_eq!(versions, expected);
    // All three work on the same tables.
    a.create_queue(&ns("app"), &queue("q"), &QueuePatch::default())
        .await
        .unwrap();
    assert_eq!(
        c.get_queue(&ns("app"), &queue("q")).await.unwrap().name,
        queue("q")
    );
    assert_eq!(b.list_namespaces().await.unwrap(), vec![ns("app")]);
}

#[tokio::test]
async fn the_schema_option_puts_the_tables_in_that_schema() {
    let db = fresh_database().await;
    let store = db
        .store_with(PgOptions {
            pool_size: 2,
            schema: Some("pgq_custom".into()),
            ..PgOptions::default()
        })
        .await;
    store
        .create_queue(&ns("app"), &queue("q"), &QueuePatch::default())
        .await
        .unwrap();
    let tables = strings(
        db.url(),
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_name IN ('queues', 'tasks', 'tickers') ORDER BY 1",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            "pgq_custom.queues",
            "pgq_custom.tasks",
            "pgq_custom.tickers"
        ]
    );
    let names = strings(db.url(), "SELECT name FROM pgq_custom.queues").await;
    assert_eq!(names, vec!["q"]);
    // A second store on the same schema finds the migrations applied.
    let again = db
        .store_with(PgOptions {
            pool_size: 1,
            schema: Some("pgq_custom".into()),
            ..PgOptions::default()
        })
        .await;
    assert_eq!(again.list_namespaces().await.unwrap(), vec![ns("app")]);
    assert!(matches!(
        PgStore::connect(
            db.url(),
            PgOptions {
                schema: Some("bad; drop".into()),
                ..PgOptions::default()
            }
        )
        .await,
        Err(pgqueue_postgres::PgError::InvalidSchema(_))
    ));
}

#[tokio::test]
async fn a_connection_failure_names_the_server() {
    let err = PgStore::connect(
        "postgres://postgres@127.0.0.1:1/nothing",
        PgOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn lifecycle_follows_the_domain_rules_at_the_pinned_time() {
    let db = fresh_database().await;
    let clock = manual();
    let store = db.store(clock.clone()).await;
    let (app, q) = (ns("app"), queue("emails"));
    store
        .create_queue(
            &app,
            &q,
            &QueueMeta {
                retries: Some(2),
                retry_delay: Some(Duration::from_secs(10)),
                lease: Some(Duration::from_secs(30)),
                ttl: Some(Duration::from_nanos(3_600_000_000_999)),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .create_queue(&app, &q, &QueuePatch::default())
            .await
            .unwrap_err(),
        StoreError::Conflict("queue already exists".into())
    );
    let created = store
        .create_tasks(&app, &q, &[task(json!(null)), task(json!({"n": 2}))])
        .await
        .unwrap()
        .into_iter()
        .map(Created::into_task)
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].payload, json!(null));
    assert!(created[0].id < created[1].id);
    assert_eq!(created[0].status(), Status::New);
    assert_eq!(created[0].created_at, t0());
    // ttl truncated to whole microseconds, like domain::time::add.
    assert_eq!(
        created[0].dies_at(),
        t0() + TimeDelta::microseconds(3_600_000_000)
    );
    assert_eq!((created[0].retries(), created[0].max_retries()), (2, 2));
    assert_eq!(
        store
            .create_tasks(&app, &queue("nope"), &[task(json!(1))])
            .await
            .unwrap_err(),
        StoreError::not_found("queue", "nope")
    );

    let got = store
        .retain_tasks(&app, &worker("w1"), &[], 1)
        .await
        .unwrap()
        .tasks;
    assert_eq!(got.len(), 1);
    let t = &got[0];
    assert_eq!(t.id, created[0].id);
    assert_eq!(t.status(), Status::Retained);
    assert_eq!(t.worker(), Some("w1"));
    assert_eq!(t.started_at(), Some(t0()));
    assert_eq!(t.lease_expires_at(), Some(t0() + TimeDelta::seconds(30)));

    // Fencing and refusals.
    let fenced = Outcome::done().by(worker("w2"));
    assert_eq!(
        store.release_task(&app, t.id, &fenced).await.unwrap_err(),
        StoreError::Rule(pgqueue_domain::Error::NotRetainedBy("w2".into()))
    );
    assert_eq!(
        store
            .release_task(&app, created[1].id, &Outcome::done())
            .await
            .unwrap_err(),
        StoreError::Rule(pgqueue_domain::Error::NotRetained)
    );
    assert_eq!(
        store
            .release_task(&app, 999_999, &Outcome::done())
            .await
            .unwrap_err(),
        StoreError::task_not_found(999_999)
    );
    assert_eq!(
        store
            .release_task(&ns("other"), t.id, &Outcome::done())
            .await
            .unwrap_err(),
        StoreError::task_not_found(t.id)
    );

    // Heartbeat extends the lease at the new now.
    clock.advance(TimeDelta::seconds(20));
    let hb = store.heartbeat(&app, t.id, &worker("w1")).await.unwrap();
    assert_eq!(hb.lease_expires_at(), Some(t0() + TimeDelta::seconds(50)));
    assert_eq!(
        store
            .heartbeat(&app, t.id, &worker("w9"))
            .await
            .unwrap_err(),
        StoreError::Rule(pgqueue_domain::Error::NotRetainedBy("w9".into()))
    );

    // First failure: retry after 1 × delay, started_at cleared, error stored as sent.
    let failed = store
        .release_task(
            &app,
            t.id,
            &Outcome::failure(json!("boom")).unwrap().by(worker("w1")),
        )
        .await
        .unwrap();
    assert_eq!(failed.status(), Status::Retry);
    assert_eq!(failed.retries(), 1);
    assert_eq!(failed.result().cloned(), Some(json!("boom")));
    assert_eq!(failed.started_at(), None);
    assert_eq!(failed.lease_expires_at(), None);
    let now = t0() + TimeDelta::seconds(20);
    assert_eq!(failed.delayed_at(), Some(now + TimeDelta::seconds(10)));

    // Not due yet: the other task comes first, then nothing.
    let second = store
        .retain_tasks(&app, &worker("w1"), std::slice::from_ref(&q), 5)
        .await
        .unwrap()
        .tasks;
    assert_eq!(
        second.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![created[1].id]
    );
    let done = store
        .release_task(
            &app,
            created[1].id,
            &Outcome::success(Some(json!({"ok": 1}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), Status::Released);
    assert_eq!(done.finished_at(), Some(now));
    assert_eq!(done.result().cloned(), Some(json!({"ok": 1})));

    // Due again after the backoff; the last attempt fails for good.
    clock.advance(TimeDelta::seconds(10));
    let again = store
        .retain_tasks(&app, &worker("w2"), &[queue("other"), q.clone()], 1)
        .await
        .unwrap()
        .tasks;
    assert_eq!(again[0].id, t.id);
    assert_eq!(again[0].result().cloned(), None);
    let dead = store
        .release_task(&app, t.id, &Outcome::failure(json!({"e": 2})).unwrap())
        .await
        .unwrap();
    assert_eq!(dead.status(), Status::Failed);
    assert_eq!(dead.retries(), 0);
    assert_eq!(dead.started_at(), Some(t0() + TimeDelta::seconds(30)));
    assert_eq!(dead.finished_at(), Some(t0() + TimeDelta::seconds(30)));

    // Statuses, listings, clean_queue.
    let counts = store.queue_statuses(&app).await.unwrap();
    assert_eq!(counts.len(), Status::ALL.len());
    assert_eq!(
        counts
            .iter()
            .map(|c| (c.status, c.count))
            .collect::<Vec<_>>(),
        vec![
            (Status::New, 0),
            (Status::Retained, 0),
            (Status::Retry, 0),
            (Status::Released, 1),
            (Status::Failed, 1),
            (Status::Expired, 0),
            (Status::Cancelled, 0)
        ]
    );
    let failed_only = store
        .list_tasks(
            &app,
            &TaskFilter {
                status: Some(Status::Failed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(failed_only.count, 1);
    assert_eq!(failed_only.items[0].id, t.id);
    let counted = store
        .list_tasks(
            &app,
            &TaskFilter {
                page: Page::new(None, Some(0)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((counted.count, counted.items.len()), (2, 0));
    let cleaned = store.clean_queue(&app, &q).await.unwrap();
    assert_eq!(
        cleaned.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![created[0].id, created[1].id]
    );
    assert_eq!(
        store.clean_queue(&app, &queue("nope")).await.unwrap(),
        vec![]
    );
}

#[tokio::test]
async fn expiry_rescue_and_clean_up_follow_the_domain() {
    let db = fresh_database().await;
    let clock = manual();
    let store = db.store(clock.clone()).await;
    let app = ns("app");
    let q = queue("q");
    store
        .create_queue(
            &app,
            &q,
            &QueueMeta {
                ttl: Some(Duration::from_secs(100)),
                lease: Some(Duration::from_secs(10)),
                retries: Some(1),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .create_tasks(&app, &q, &[task(json!(1)), task(json!(2)), task(json!(3))])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.into_task())
        .collect::<Vec<_>>()
        .iter()
        .map(|t| t.id)
        .collect();
    let held = store
        .retain_tasks(&app, &worker("w"), &[], 2)
        .await
        .unwrap()
        .tasks;
    assert_eq!(held.iter().map(|t| t.id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(store.rescue_leases(10).await.unwrap(), vec![]);
    clock.advance(TimeDelta::seconds(10));
    let rescued = store.rescue_leases(1).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].status(), Status::Failed);
    assert_eq!(
        rescued[0].result().cloned(),
        Some(json!({"error": "lease expired"}))
    );
    // Past dies_at: the other retained task expires and is not rescued.
    clock.advance(TimeDelta::seconds(90));
    assert_eq!(store.rescue_leases(10).await.unwrap(), vec![]);
    let expired = store
        .list_tasks(
            &app,
            &TaskFilter {
                status: Some(Status::Expired),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        expired.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        ids[1..]
    );
    assert!(
        store
            .retain_tasks(&app, &worker("w"), &[], 5)
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
    // A retained task past dies_at may still be released.
    let late = store
        .release_task(&app, ids[1], &Outcome::done())
        .await
        .unwrap();
    assert_eq!(late.status(), Status::Released);
    // Ended at t0+10 (failed), t0+100 (released) and t0+100 (expired): kept for ttl = 100 s.
    assert_eq!(store.clean_up(10).await.unwrap(), 0);
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(store.clean_up(10).await.unwrap(), 1);
    clock.advance(TimeDelta::seconds(90));
    assert_eq!(store.clean_up(1).await.unwrap(), 1);
    assert_eq!(store.clean_up(10).await.unwrap(), 1);
    assert_eq!(store.clean_up(10).await.unwrap(), 0);
}

#[tokio::test]
async fn tickers_register_claim_and_fire_queue_tasks() {
    let db = fresh_database().await;
    let clock = manual();
    let store = db.store(clock.clone()).await;
    let app = ns("app");
    let hourly = TickerName::parse("hourly").unwrap();
    let patch = TickerMeta {
        interval: Some(Duration::from_secs(60)),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let created = store.create_ticker(&app, &hourly, &patch).await.unwrap();
    assert_eq!(created.payload, json!({}));
    assert_eq!(created.timestamp, None);
    assert_eq!(
        store
            .create_ticker(&app, &hourly, &patch)
            .await
            .unwrap_err(),
        StoreError::Conflict("ticker already exists".into())
    );
    assert_eq!(
        store
            .next_maturity(&TickerScope::Deliveries(app.clone()))
            .await
            .unwrap(),
        Some(std::time::Duration::ZERO)
    );
    let claimed = store.claim_ticker(&app).await.unwrap().unwrap();
    assert_eq!(claimed.timestamp, Some(t0()));
    assert_eq!(store.claim_ticker(&app).await.unwrap(), None);
    assert_eq!(
        store
            .next_maturity(&TickerScope::Deliveries(app.clone()))
            .await
            .unwrap(),
        Some(std::time::Duration::from_secs(60))
    );
    // Re-registering keeps the timestamp.
    let re = store
        .register_ticker(
            &app,
            &hourly,
            &TickerMeta {
                payload: Some(json!({"a": 1})),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(re.timestamp, Some(t0()));
    assert_eq!(re.payload, json!({"a": 1}));
    assert_eq!(re.schedule.interval(), Some(Duration::from_secs(60)));
    clock.advance(TimeDelta::seconds(60));
    assert!(store.claim_ticker(&app).await.unwrap().is_some());

    // A queue ticker: needs its queue, fires a task, skips when the queue is gone.
    let reports = TickerName::parse("reports").unwrap();
    let to_queue = TickerMeta {
        queue: Some(Some("jobs".into())),
        payload: Some(json!({"r": 1})),
        ..Default::default()
    }
    .validate()
    .unwrap();
    store
        .create_queue(&app, &queue("jobs"), &QueuePatch::default())
        .await
        .unwrap();
    store
        .create_ticker(&app, &reports, &to_queue)
        .await
        .unwrap();
    assert_eq!(store.claim_ticker(&app).await.unwrap(), None);
    let fired = store.fire_queue_tickers(10).await.unwrap();
    assert_eq!(fired.len(), 1);
    let task = fired[0].task.as_ref().unwrap();
    assert_eq!(
        (task.queue.as_str(), &task.payload),
        ("jobs", &json!({"r": 1}))
    );
    assert!(store.fire_queue_tickers(10).await.unwrap().is_empty());
    store.delete_queue(&app, &queue("jobs")).await.unwrap();
    clock.advance(TimeDelta::seconds(60));
    let skipped = store.fire_queue_tickers(10).await.unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].task, None);
    assert_eq!(skipped[0].ticker.timestamp, Some(clock.get()));

    let listed = store.list_tickers(&app, Page::default()).await.unwrap();
    assert_eq!(listed.count, 2);
    assert_eq!(listed.items[0].name, hourly);
    let renamed = store
        .update_ticker(
            &app,
            &hourly,
            &TickerMeta {
                ticker: Some("daily".into()),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "daily");
    assert_eq!(
        store
            .update_ticker(
                &app,
                &renamed.name,
                &TickerMeta {
                    ticker: Some(reports.to_string()),
                    ..Default::default()
                }
                .validate()
                .unwrap()
            )
            .await
            .unwrap_err(),
        StoreError::Conflict("ticker already exists".into())
    );
    assert_eq!(
        store
            .update_ticker(
                &app,
                &TickerName::parse("ghost").unwrap(),
                &TickerMeta {
                    ticker: Some("other".into()),
                    ..Default::default()
                }
                .validate()
                .unwrap()
            )
            .await
            .unwrap_err(),
        StoreError::not_found("ticker", "ghost")
    );
    store.delete_ticker(&app, &reports).await.unwrap();
    assert_eq!(
        store.get_ticker(&app, &reports).await.unwrap_err(),
        StoreError::not_found("ticker", "reports")
    );
}

#[tokio::test]
async fn queues_rename_with_their_tasks_and_conflict_on_existing_names() {
    let db = fresh_database().await;
    let store = db.store(manual()).await;
    let app = ns("app");
    store
        .create_queue(&app, &queue("a"), &QueuePatch::default())
        .await
        .unwrap();
    store
        .create_queue(&app, &queue("b"), &QueuePatch::default())
        .await
        .unwrap();
    let t = store
        .create_tasks(&app, &queue("a"), &[task(json!(1))])
        .await
        .unwrap();
    let rename = |to: &str| {
        QueueMeta {
            queue: Some(to.to_string()),
            ..Default::default()
        }
        .validate()
        .unwrap()
    };
    assert_eq!(
        store
            .update_queue(&app, &queue("a"), &rename("b"))
            .await
            .unwrap_err(),
        StoreError::Conflict("queue already exists".into())
    );
    let renamed = store
        .update_queue(&app, &queue("a"), &rename("c"))
        .await
        .unwrap();
    assert_eq!(renamed.name, queue("c"));
    assert_eq!(
        store.get_task(&app, t[0].task().id).await.unwrap().queue,
        queue("c")
    );
    assert_eq!(
        store
            .update_queue(&app, &queue("zz"), &rename("y"))
            .await
            .unwrap_err(),
        StoreError::not_found("queue", "zz")
    );
    let reg = store
        .register_queue(
            &app,
            &queue("c"),
            &QueueMeta {
                retries: Some(7),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((reg.retries, reg.ttl), (7, Duration::from_hours(1)));
    let page = store
        .list_queues(&app, Page::new(Some(1), Some(1)))
        .await
        .unwrap();
    assert_eq!((page.count, page.items[0].name.as_str()), (2, "c"));
    store.delete_queue(&app, &queue("c")).await.unwrap();
    assert_eq!(
        store.get_task(&app, t[0].task().id).await.unwrap_err(),
        StoreError::task_not_found(t[0].task().id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retainers_take_each_task_exactly_once() {
    const TASKS: usize = 20_000;
    const RETAINERS: usize = 16;
    let db = fresh_database().await;
    let store = db
        .store_with(PgOptions {
            pool_size: RETAINERS as u32,
            ..PgOptions::default()
        })
        .await;
    let app = ns("app");
    store
        .create_queue(&app, &queue("q"), &QueuePatch::default())
        .await
        .unwrap();
    let batch: Vec<NewTask> = (0..5_000).map(|i| task(json!(i))).collect();
    for _ in 0..TASKS / batch.len() {
        store.create_tasks(&app, &queue("q"), &batch).await.unwrap();
    }
    let mut handles = Vec::new();
    for r in 0..RETAINERS {
        let store = store.clone();
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let me = worker(&format!("w{r}"));
            let mut got = Vec::new();
            loop {
                let batch = store.retain_tasks(&app, &me, &[], 4).await.unwrap().tasks;
                if batch.is_empty() {
                    break got;
                }
                assert!(batch.iter().all(|t| t.worker() == Some(me.as_str())));
                got.extend(batch.into_iter().map(|t| t.id));
            }
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for h in handles {
        let got = h.await.unwrap();
        busy += usize::from(!got.is_empty());
        all.extend(got);
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS, "every task retained exactly once");
    assert_eq!(distinct.len(), TASKS, "no task retained twice");
    assert!(busy > 1, "retainers ran concurrently");
    let retained = store
        .list_tasks(
            &app,
            &TaskFilter {
                status: Some(Status::Retained),
                page: Page::new(None, Some(0)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(retained.count, TASKS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_a_ticker_without_double_firing() {
    let db = fresh_database().await;
    let a = db.store(Arc::new(StorageClock)).await;
    let b = db.store(Arc::new(StorageClock)).await;
    let app = ns("app");
    a.create_ticker(
        &app,
        &TickerName::parse("fast").unwrap(),
        &TickerMeta {
            interval: Some(Duration::from_millis(200)),
            ..Default::default()
        }
        .validate()
        .unwrap(),
    )
    .await
    .unwrap();
    let run = |store: PgStore| {
        let app = app.clone();
        tokio::spawn(async move {
            let end = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
            let mut fired = Vec::new();
            while tokio::time::Instant::now() < end {
                if let Some(t) = store.claim_ticker(&app).await.unwrap() {
                    fired.push(t.timestamp.unwrap());
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            fired
        })
    };
    let (fa, fb) = tokio::join!(run(a.clone()), run(b.clone()));
    let (fa, fb) = (fa.unwrap(), fb.unwrap());
    let mut all: Vec<DateTime<Utc>> = fa.iter().chain(fb.iter()).copied().collect();
    all.sort();
    assert!(
        (12..=16).contains(&all.len()),
        "fired {} times: {all:?}",
        all.len()
    );
    assert!(!fa.is_empty() || !fb.is_empty());
    for w in all.windows(2) {
        assert!(
            w[1] - w[0] >= TimeDelta::milliseconds(200),
            "two firings for one maturity: {w:?}"
        );
    }
}

/// Waits for the first task wake-up (skipping others), up to `within`.
async fn next_task_wakeup(
    rx: &mut tokio::sync::broadcast::Receiver<Wakeup>,
    within: std::time::Duration,
) -> Option<Wakeup> {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(w @ Wakeup::Task { .. }) => return Some(w),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn created_tasks_wake_subscribers_and_rolled_back_ones_do_not() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let app = ns("app");
    let q = queue("q");
    store
        .create_queue(&app, &q, &QueuePatch::default())
        .await
        .unwrap();
    let mut rx = store.signal().subscribe();
    store
        .create_tasks(&app, &q, &[task(json!(1))])
        .await
        .unwrap();
    assert_eq!(
        next_task_wakeup(&mut rx, std::time::Duration::from_secs(2)).await,
        Some(Wakeup::Task {
            namespace: app.clone(),
            queue: q.clone()
        })
    );

    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    // Rolled back: no task, no wake-up.
    let rolled: Result<(), diesel::result::Error> = conn
        .transaction(async |conn| {
            let made = enqueue_in(conn, &app, &q, &[task(json!("rolled back"))])
                .await
                .unwrap();
            assert_eq!(made.len(), 1);
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled.is_err());
    assert_eq!(
        next_task_wakeup(&mut rx, std::time::Duration::from_millis(500)).await,
        None
    );
    let all = store
        .list_tasks(&app, &TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(all.count, 1);

    // Committed with the caller's own change: the task exists and wakes subscribers.
    let made = conn
        .transaction(async |conn| {
            diesel::sql_query("CREATE TABLE orders (id int)")
                .execute(conn)
                .await?;
            let made = enqueue_in(conn, &app, &q, &[task(json!("committed"))])
                .await
                .unwrap();
            Ok::<_, diesel::result::Error>(made)
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .get_task(&app, made[0].task().id)
            .await
            .unwrap()
            .payload,
        json!("committed")
    );
    assert!(
        next_task_wakeup(&mut rx, std::time::Duration::from_secs(2))
            .await
            .is_some()
    );
    assert_eq!(
        enqueue_in(&mut conn, &app, &queue("missing"), &[task(json!(1))])
            .await
            .unwrap_err(),
        StoreError::not_found("queue", "missing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_listener_recover_from_killed_backends() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let app = ns("app");
    let q = queue("q");
    store
        .create_queue(&app, &q, &QueuePatch::default())
        .await
        .unwrap();
    let batch: Vec<NewTask> = (0..100).map(|i| task(json!(i))).collect();
    store.create_tasks(&app, &q, &batch).await.unwrap();
    let mut seen: Vec<i64> = Vec::new();
    // Use several pool connections so that more than one is killed.
    let w = worker("w");
    let firsts =
        futures::future::join_all((0..4).map(|_| store.retain_tasks(&app, &w, &[], 5))).await;
    for r in firsts {
        seen.extend(r.unwrap().tasks.iter().map(|t| t.id));
    }
    let mut rx = store.signal().subscribe();

    let killed = strings(
        db.url(),
        &format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name()
        ),
    )
    .await;
    assert!(killed.len() >= 2, "killed {killed:?}");

    let resync = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Ok(Wakeup::Resync) = rx.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(
        resync.is_ok(),
        "the listener sent Resync after reconnecting"
    );

    loop {
        let got = store
            .retain_tasks(&app, &worker("w"), &[], 7)
            .await
            .unwrap()
            .tasks;
        if got.is_empty() {
            break;
        }
        seen.extend(got.iter().map(|t| t.id));
    }
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 100);
    assert_eq!(distinct.len(), 100);
    // The listener listens again.
    store
        .create_tasks(&app, &q, &[task(json!(1))])
        .await
        .unwrap();
    assert!(
        next_task_wakeup(&mut rx, std::time::Duration::from_secs(2))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn batched_release_applies_each_outcome() {
    let db = fresh_database().await;
    let clock = manual();
    let store = db.store(clock.clone()).await;
    let app = ns("app");
    let q = queue("q");
    store
        .create_queue(
            &app,
            &q,
            &QueueMeta {
                retry_delay: Some(Duration::from_secs(1)),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .await
        .unwrap();
    let made = store
        .create_tasks(&app, &q, &[task(json!(1)), task(json!(2)), task(json!(3))])
        .await
        .unwrap()
        .into_iter()
        .map(Created::into_task)
        .collect::<Vec<_>>();
    store
        .retain_tasks(&app, &worker("w"), &[], 2)
        .await
        .unwrap();
    let results = store
        .release_tasks(
            &app,
            &[
                (made[1].id, Outcome::failure(json!("x")).unwrap()),
                (made[0].id, Outcome::success(Some(json!("ok"))).unwrap()),
                (made[2].id, Outcome::done()),
                (made[0].id, Outcome::done()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    let r1 = results[0].as_ref().unwrap();
    assert_eq!((r1.status(), r1.retries()), (Status::Retry, 2));
    assert_eq!(r1.delayed_at(), Some(t0() + TimeDelta::seconds(1)));
    assert_eq!(results[1].as_ref().unwrap().status(), Status::Released);
    assert_eq!(
        results[2].as_ref().unwrap_err(),
        &StoreError::Rule(pgqueue_domain::Error::NotRetained)
    );
    assert_eq!(
        results[3].as_ref().unwrap_err(),
        &StoreError::Rule(pgqueue_domain::Error::NotRetained)
    );
}

/// How many backends of the test database are the store's listener.
async fn listeners(url: &str, db: &str) -> usize {
    strings(
        url,
        &format!(
            "SELECT pid::text FROM pg_stat_activity WHERE datname = '{db}' \
             AND (query = 'LISTEN pgqueue' OR query LIKE 'LISTEN pgqueue; UNLISTEN %')"
        ),
    )
    .await
    .len()
}

/// Polls until `listeners` reports `want`, for up to 5 s.
async fn wait_for_listeners(url: &str, db: &str, want: usize) -> usize {
    let mut seen = usize::MAX;
    for _ in 0..100 {
        seen = listeners(url, db).await;
        if seen == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test]
async fn the_listener_stops_on_close_and_when_the_last_clone_is_dropped() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    assert_eq!(wait_for_listeners(db.url(), db.name(), 1).await, 1);
    let clone = store.clone();
    drop(store);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(listeners(db.url(), db.name()).await, 1, "a clone keeps it");
    clone.close();
    assert_eq!(wait_for_listeners(db.url(), db.name(), 0).await, 0);
    // Still usable for statements after close; only wake-ups stop.
    assert_eq!(
        clone.list_namespaces().await.unwrap(),
        Vec::<Namespace>::new()
    );
    drop(clone);

    let other = db.store(Arc::new(StorageClock)).await;
    assert_eq!(wait_for_listeners(db.url(), db.name(), 1).await, 1);
    drop(other);
    assert_eq!(wait_for_listeners(db.url(), db.name(), 0).await, 0);
}

/// An idle worker whose safety-net poll is 30 s sees a task created by another process (a
/// second store on the same database) within a second: the wake-up came through
/// LISTEN/NOTIFY, not the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_another_process_insert() {
    let db = fresh_database().await;
    let worker_store = Arc::new(db.store(Arc::new(StorageClock)).await);
    let producer = Arc::new(db.store(Arc::new(StorageClock)).await);
    let m = pgqueue_app::Manager::new(worker_store)
        .with_namespace("wake")
        .unwrap();
    m.create_queue(pgqueue_domain::QueueMeta {
        queue: Some("q".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<std::time::Instant>();
    let worker = pgqueue_app::Worker::new(m.clone())
        .poll_interval(std::time::Duration::from_secs(30))
        .handle("q", move |_| {
            let _ = seen_tx.send(std::time::Instant::now());
            async { Ok::<_, String>(serde_json::Value::Null) }
        })
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    // Let the worker make its first (empty) claim and go idle on the signal.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let other = pgqueue_app::Manager::new(producer)
        .with_namespace("wake")
        .unwrap();
    let created = std::time::Instant::now();
    other
        .create_task("q", pgqueue_domain::TaskMeta::new(json!("hi")))
        .await
        .unwrap()
        .into_task();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(5), seen_rx.recv())
        .await
        .expect("handled before the 30 s poll")
        .unwrap();
    assert!(
        seen - created < std::time::Duration::from_secs(1),
        "woken after {:?}",
        seen - created
    );
    let _ = stop.send(());
    run.await.unwrap().unwrap();
}

/// `reltuples` of the task table: what the planner believes it holds.
async fn planner_rows(url: &str) -> f64 {
    strings(
        url,
        "SELECT reltuples::text FROM pg_class WHERE oid = 'tasks'::regclass",
    )
    .await[0]
        .parse()
        .unwrap()
}

/// Maintenance refreshes statistics when forced, and when autovacuum will not look after
/// the table, vacuums once dead rows pass autovacuum's threshold, by itself.
#[tokio::test]
async fn maintenance_analyses_and_vacuums_when_autovacuum_will_not() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    // Whatever the server's setting, this table is ours to look after.
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await
        .unwrap();
    let app = ns("app");
    let q = queue("q");
    store
        .create_queue(&app, &q, &QueuePatch::default())
        .await
        .unwrap();
    for _ in 0..3 {
        let batch: Vec<NewTask> = (0..1000).map(|i| task(json!(i))).collect();
        store.create_tasks(&app, &q, &batch).await.unwrap();
    }
    assert!(planner_rows(db.url()).await < 3000.0);
    let done = store.maintain(true).await.unwrap();
    assert!(done.analyzed, "{done:?}");
    assert_eq!(planner_rows(db.url()).await, 3000.0);

    // 3,000 dead rows (> 1,000 + 1% of live): due as soon as the counters show them.
    store.delete_queue(&app, &q).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let done = store.maintain(false).await.unwrap();
        if done.vacuumed || std::time::Instant::now() > deadline {
            break done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(done.vacuumed && done.analyzed, "{done:?}");
    assert_eq!(planner_rows(db.url()).await, 0.0);
    // Nothing left to do: the next pass does nothing.
    let again = store.maintain(false).await.unwrap();
    assert!(!again.vacuumed, "{again:?}");
}

/// The event log churns too (a row per changing statement, numbered by an update, pruned by
/// a delete): when autovacuum will not look after it, maintenance vacuums it with the same
/// threshold as the task table. Before, only `tasks` was looked after, and a 9-minute soak
/// at 500 tasks/s left `task_events` at 207 MB with 224,000 dead rows, never vacuumed.
#[tokio::test]
async fn maintenance_vacuums_the_event_log_when_autovacuum_will_not() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = db.client().await;
    client
        .batch_execute(
            "ALTER TABLE task_events SET (autovacuum_enabled = false); \
             INSERT INTO task_events (at, namespaces, queues, tasks, kinds, statuses) \
               SELECT now(), ARRAY['app'], ARRAY['q'], ARRAY[g], ARRAY['created'], ARRAY['new'] \
               FROM generate_series(1, 3000) AS g; \
             DELETE FROM task_events",
        )
        .await
        .unwrap();
    let vacuums = async || -> i64 {
        strings(
            db.url(),
            "SELECT vacuum_count::text FROM pg_stat_user_tables \
             WHERE relid = 'task_events'::regclass",
        )
        .await[0]
            .parse()
            .unwrap()
    };
    assert_eq!(vacuums().await, 0);
    // 3,000 dead rows (> 1,000 + 1% of live): due as soon as the counters show them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while vacuums().await == 0 && std::time::Instant::now() < deadline {
        store.maintain(false).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(vacuums().await, 1, "the event log was vacuumed once");
    // Nothing left to do: the next passes leave it alone.
    for _ in 0..3 {
        store.maintain(false).await.unwrap();
    }
    assert_eq!(vacuums().await, 1);
}

/// While another session holds the cleanup horizon back (`BEGIN; SELECT txid_current();`
/// left open), a vacuum can remove none of the rows that died since the last one: after that
/// one pass, maintenance stops vacuuming (however many dead rows the counters show) until the
/// horizon moves, then vacuums again. It says once, naming the holder's backend, why.
#[tokio::test]
async fn maintenance_does_not_vacuum_again_behind_a_held_horizon() {
    let (logs, _guard) = pgqueue_tests::logs::Logs::capture();
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE tasks SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (app, q) = (ns("app"), queue("q"));
    // 3,000 dead rows: created, then deleted with their queue.
    let churn = async || {
        store
            .create_queue(&app, &q, &QueuePatch::default())
            .await
            .unwrap();
        for _ in 0..3 {
            let batch: Vec<NewTask> = (0..1000).map(|i| task(json!(i))).collect();
            store.create_tasks(&app, &q, &batch).await.unwrap();
        }
        store.delete_queue(&app, &q).await.unwrap();
    };
    let vacuumed_within = async |secs: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if store.maintain(false).await.unwrap().vacuumed {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let dead = async || -> i64 {
        strings(
            db.url(),
            "SELECT n_dead_tup::text FROM pg_stat_user_tables WHERE relid = 'tasks'::regclass",
        )
        .await[0]
            .parse()
            .unwrap()
    };
    churn().await;
    assert!(vacuumed_within(30).await, "dead rows are vacuumed");

    let holder = db.hold_horizon().await;
    churn().await;
    // The first pass since the horizon was taken runs (rows that died before it would go).
    assert!(
        vacuumed_within(30).await,
        "the first pass behind the holder"
    );
    assert!(
        dead().await > 1000,
        "the rows that died after the holder began stay"
    );
    for _ in 0..5 {
        let done = store.maintain(false).await.unwrap();
        assert!(!done.vacuumed, "a pass that could remove nothing: {done:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let said = logs.lines_with("vacuum skipped until this transaction ends");
    assert_eq!(said.len(), 1, "said once over six passes: {said:?}");
    assert!(
        said[0].contains(&format!("pid={pid}")) && said[0].contains("txid_current"),
        "names the holder's backend and its statement: {said:?}"
    );
    holder.batch_execute("COMMIT").await.unwrap();
    assert!(vacuumed_within(30).await, "the horizon moved: vacuum again");
    assert!(dead().await < 1000, "and now the rows are gone");
}

/// Without a foreign key, deleting or renaming a queue while tasks are being created into
/// it must still leave no task behind under the old name: inserts lock the queue's row once,
/// and the delete or rename carries the tasks after that lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_or_renaming_a_queue_under_concurrent_creates_strands_no_task() {
    let db = fresh_database().await;
    let store = Arc::new(db.store(Arc::new(StorageClock)).await);
    let app = ns("race");
    for round in 0..10 {
        let old = queue(&format!("q{round}"));
        store
            .create_queue(&app, &old, &QueuePatch::default())
            .await
            .unwrap();
        let mut creators = Vec::new();
        for _ in 0..4 {
            let (store, app, old) = (store.clone(), app.clone(), old.clone());
            creators.push(tokio::spawn(async move {
                let batch: Vec<NewTask> = (0..20).map(|i| task(json!(i))).collect();
                loop {
                    match store.create_tasks(&app, &old, &batch).await {
                        Ok(_) => {}
                        Err(StoreError::NotFound(_)) => return,
                        Err(e) => panic!("unexpected: {e}"),
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let renamed = round % 2 == 1;
        if renamed {
            let new = queue(&format!("renamed{round}"));
            store
                .update_queue(
                    &app,
                    &old,
                    &QueueMeta {
                        queue: Some(new.to_string()),
                        ..Default::default()
                    }
                    .validate()
                    .unwrap(),
                )
                .await
                .unwrap();
        } else {
            store.delete_queue(&app, &old).await.unwrap();
        }
        for c in creators {
            c.await.unwrap();
        }
        let left = strings(
            db.url(),
            &format!(
                "SELECT count(*)::text FROM tasks WHERE namespace = 'race' AND queue = '{old}'"
            ),
        )
        .await;
        assert_eq!(
            left,
            vec!["0".to_string()],
            "round {round} (renamed: {renamed})"
        );
    }
}

/// Creates inside a queue's debounce window insert quietly; one trailing NOTIFY at the
/// window's end announces them, so an idle worker (its safety poll 30 s away) still handles
/// them at once. A 500 ms window makes the quiet create and its late wake-up observable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_inside_the_debounce_window_is_announced_at_its_end() {
    use std::time::{Duration, Instant};
    let db = fresh_database().await;
    let worker_store = Arc::new(db.store(Arc::new(StorageClock)).await);
    let producer = Arc::new(
        db.store_with(PgOptions {
            notify_debounce: Duration::from_millis(500),
            ..PgOptions::default()
        })
        .await,
    );
    let m = pgqueue_app::Manager::new(worker_store)
        .with_namespace("burst")
        .unwrap();
    m.create_queue(pgqueue_domain::QueueMeta {
        queue: Some("q".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Value)>();
    let worker = pgqueue_app::Worker::new(m.clone())
        .poll_interval(Duration::from_secs(30))
        .handle("q", move |payload| {
            let _ = seen_tx.send((Instant::now(), payload));
            async { Ok::<_, String>(Value::Null) }
        })
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = pgqueue_app::Manager::new(producer)
        .with_namespace("burst")
        .unwrap();
    let first = Instant::now();
    other
        .create_task("q", pgqueue_domain::TaskMeta::new(json!("leads")))
        .await
        .unwrap()
        .into_task();
    let (seen, payload) = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .expect("the leading create wakes the worker")
        .unwrap();
    assert_eq!(payload, json!("leads"));
    assert!(
        seen - first < Duration::from_millis(400),
        "{:?}",
        seen - first
    );
    // The worker is idle again; this create is inside the window: no NOTIFY of its own.
    tokio::time::sleep(Duration::from_millis(100)).await;
    other
        .create_task("q", pgqueue_domain::TaskMeta::new(json!("quiet")))
        .await
        .unwrap()
        .into_task();
    let (seen, payload) = tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .expect("the trailing NOTIFY wakes the worker long before its 30 s poll")
        .unwrap();
    assert_eq!(payload, json!("quiet"));
    let after = seen - first;
    assert!(
        after >= Duration::from_millis(450),
        "announced at the window's end, not at once: {after:?}"
    );
    let _ = stop.send(());
    run.await.unwrap().unwrap();
}

/// A limited queue's claims take turns on its row's `claim_seq`: every claim and every change
/// of the queue's limits bumps it, so a claim that read older limits or an older count
/// retains nothing and reads again. Unlimited queues' claims leave it alone.
#[tokio::test]
async fn limited_claims_and_limit_changes_bump_the_claim_sequence() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let (app, q) = (ns("app"), queue("q"));
    let limited = QueueMeta {
        max_running: Some(Some(5)),
        ..Default::default()
    }
    .validate()
    .unwrap();
    store.create_queue(&app, &q, &limited).await.unwrap();
    let seq = async || -> i64 {
        strings(
            db.url(),
            "SELECT claim_seq::text FROM queues WHERE namespace = 'app' AND name = 'q'",
        )
        .await[0]
            .parse()
            .unwrap()
    };
    assert_eq!(seq().await, 0);
    let batch: Vec<NewTask> = (0..3).map(|i| task(json!(i))).collect();
    store.create_tasks(&app, &q, &batch).await.unwrap();
    let got = store
        .retain_tasks(&app, &worker("w"), std::slice::from_ref(&q), 2)
        .await
        .unwrap();
    assert_eq!(got.tasks.len(), 2);
    assert_eq!(seq().await, 1, "a claim that retained bumps it");
    let unlimit = QueueMeta {
        max_running: Some(None),
        ..Default::default()
    }
    .validate()
    .unwrap();
    store.update_queue(&app, &q, &unlimit).await.unwrap();
    assert_eq!(seq().await, 2, "a change of limits bumps it");
    store
        .retain_tasks(&app, &worker("w"), std::slice::from_ref(&q), 1)
        .await
        .unwrap();
    assert_eq!(
        seq().await,
        2,
        "an unlimited queue's claim does not touch the row"
    );
}
