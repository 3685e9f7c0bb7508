//! Claim floors (`adapters/postgres/src/tasks/floors.rs`; ADR 0002, "the design for the
//! product"): a one-queue claim starts each priority past the last task its store took, so
//! under a held horizon it does not step over the entries claimed tasks left behind; the
//! claim order and exactly-once hold whatever the floors say, and a task a floor passed is
//! found by the walk each lane makes once a period from an older floor.

use super::plans::explain_with;
use super::{manual, ns, queue, task, worker};
use chrono::TimeDelta;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use pgqueue_domain::{Namespace, NewTask, Outcome, QueueName, QueuePatch, TaskMeta};
use pgqueue_ports::{StorageClock, Store};
use pgqueue_postgres::{PgOptions, enqueue_in, support};
use pgqueue_tests::db::fresh_database;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn at(priority: i64, payload: Value) -> NewTask {
    TaskMeta::new(payload)
        .priority(priority)
        .validate()
        .unwrap()
}

/// Creates queue `q` of namespace `app`, where every test here works.
async fn app_queue(store: &pgqueue_postgres::PgStore) -> (Namespace, QueueName) {
    let (app, q) = (ns("app"), queue("q"));
    store
        .create_queue(&app, &q, &QueuePatch::default())
        .await
        .unwrap();
    (app, q)
}

/// The buffers the one-queue claim of `q` reads (run and rolled back) when told the lanes
/// `floors` (the statement's last three arguments, as SQL), with the generic plan prepared
/// on `client` as `claim_one`: those of its walks of the claim indexes (each of the index's
/// pages and of the table's it visits counts once per run of visits).
async fn claim_buffers(client: &tokio_postgres::Client, floors: &str) -> i64 {
    client.batch_execute("BEGIN").await.unwrap();
    let (all, _) = explain_with(
        client,
        "ANALYZE, BUFFERS, FORMAT JSON",
        &format!("EXECUTE claim_one(NULL, 'app', ARRAY['w'], ARRAY['q'], 1, {floors})"),
    )
    .await;
    client.batch_execute("ROLLBACK").await.unwrap();
    all.iter()
        .filter(|n| {
            [
                "tasks_retainable_by_queue",
                "tasks_late_by_queue",
                "tasks_retainable",
            ]
            .iter()
            .any(|i| n["Index Name"] == *i)
        })
        .map(|n| {
            n["Shared Hit Blocks"].as_i64().unwrap_or(0)
                + n["Shared Read Blocks"].as_i64().unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_held_horizon_a_floored_claim_does_not_walk_what_was_claimed() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let (app, q) = app_queue(&store).await;
    let batch: Vec<NewTask> = (0..5_000).map(|i| task(json!(i))).collect();
    for _ in 0..2 {
        store.create_tasks(&app, &q, &batch).await.unwrap();
    }
    let holder = db.hold_horizon().await;
    let me = worker("w");
    let mut last = None;
    for _ in 0..80 {
        let got = store
            .retain_tasks(&app, &me, std::slice::from_ref(&q), 100)
            .await;
        last = got.unwrap().tasks.last().map(|t| (t.created_at, t.id));
    }
    let (created_at, id) = last.unwrap();
    let client = db.client().await;
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let (_, sql) = support::claim_statements()
        .into_iter()
        .find(|(v, _)| *v == "one")
        .unwrap();
    client
        .batch_execute(&format!(
            "PREPARE claim_one (timestamptz, text, text[], text[], bigint, smallint[], \
             timestamptz[], bigint[]) AS {sql}"
        ))
        .await
        .unwrap();
    let from_head = claim_buffers(
        &client,
        "ARRAY[]::smallint[], ARRAY[]::timestamptz[], ARRAY[]::bigint[]",
    )
    .await;
    let from_floor = claim_buffers(
        &client,
        &format!(
            "ARRAY[0]::smallint[], ARRAY['{}']::timestamptz[], ARRAY[{id}]::bigint[]",
            created_at.to_rfc3339()
        ),
    )
    .await;
    // 8,000 claimed tasks left their entries in the claim index, and the horizon keeps them:
    // from the head the claim steps over all of them (each page of the index and of the
    // table they point into counts once), from the floor over none.
    assert!(
        from_head > 100,
        "from the head the claim steps over them: {from_head} buffers"
    );
    assert!(
        from_floor * 10 < from_head,
        "from the floor it does not: {from_floor} buffers (from the head: {from_head})"
    );
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floors_keep_the_claim_order_across_priorities_retries_delays_and_operator_retries() {
    let db = fresh_database().await;
    let clock = manual();
    let store = db.store(clock.clone()).await;
    let (app, q) = app_queue(&store).await;
    let me = worker("w");
    let next = async |n: u32| -> Vec<Value> {
        let got = store
            .retain_tasks(&app, &me, std::slice::from_ref(&q), n)
            .await
            .unwrap();
        got.tasks.into_iter().map(|t| t.payload).collect()
    };
    let create = async |tasks: Vec<NewTask>| {
        clock.advance(TimeDelta::milliseconds(1));
        store.create_tasks(&app, &q, &tasks).await.unwrap()
    };

    // A delayed task, then three at priority 0: the first claim takes one and learns lane 0.
    let due = clock.get() + TimeDelta::seconds(10);
    let delayed = TaskMeta::new(json!("delayed")).delayed_until(due);
    create(vec![delayed.validate().unwrap()]).await;
    create((1..=3).map(|i| at(0, json!(format!("p0-{i}")))).collect()).await;
    assert_eq!(next(1).await, vec![json!("p0-1")]);
    // Higher, between and lower priorities than the known lane are found.
    create(vec![at(10, json!("p10")), at(-5, json!("p-5"))]).await;
    create(vec![at(5, json!("p5"))]).await;
    assert_eq!(
        next(2).await,
        vec![json!("p10"), json!("p5")],
        "above and between the known lane"
    );
    // The delayed task is older than every floor: once due, it goes first in its lane.
    clock.set(due);
    assert_eq!(
        next(1).await,
        vec![json!("delayed")],
        "a delayed task below the floor"
    );
    // A failed attempt waits below the floor and comes back before younger tasks.
    let failing = store
        .retain_tasks(&app, &me, std::slice::from_ref(&q), 1)
        .await
        .unwrap();
    assert_eq!(failing.tasks[0].payload, json!("p0-2"));
    let failed = Outcome::failure(json!("boom")).unwrap().by(me.clone());
    store
        .release_task(&app, failing.tasks[0].id, &failed)
        .await
        .unwrap();
    clock.advance(TimeDelta::minutes(3));
    assert_eq!(
        next(1).await,
        vec![json!("p0-2")],
        "a retry below the floor"
    );
    // An operator's retry of an ended task brings it back under its old key: a task
    // cancelled while waiting, passed by the lane's floor, then retried.
    let waiting = create(vec![at(0, json!("cancelled, then retried"))]).await;
    let id = waiting[0].task().id;
    store.cancel_task(&app, id).await.unwrap();
    create(vec![at(0, json!("younger"))]).await;
    assert_eq!(next(2).await, vec![json!("p0-3"), json!("younger")]);
    store.retry_task(&app, id).await.unwrap();
    assert_eq!(
        next(1).await,
        vec![json!("cancelled, then retried")],
        "an operator's retry below the floor (before p-5: higher priority)"
    );
    assert_eq!(next(5).await, vec![json!("p-5")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_committed_behind_a_floor_is_claimed_by_the_trailing_walk() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let (app, q) = app_queue(&store).await;
    let me = worker("w");
    // A transaction enqueues first (its task is older) and commits last.
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let (tx_done, tx_wait) = tokio::sync::oneshot::channel::<()>();
    let (made_tx, made_rx) = tokio::sync::oneshot::channel();
    let (app2, q2) = (app.clone(), q.clone());
    let held = tokio::spawn(async move {
        conn.transaction(async |conn| {
            let made = enqueue_in(conn, &app2, &q2, &[task(json!("late commit"))])
                .await
                .unwrap();
            made_tx.send(made[0].task().id).unwrap();
            tx_wait.await.unwrap();
            Ok::<_, diesel::result::Error>(())
        })
        .await
        .unwrap();
    });
    let late = made_rx.await.unwrap();
    created_then_claimed((&store, &store), (&app, &q), "early commit").await;
    tx_done.send(()).unwrap();
    held.await.unwrap();
    // Behind the floor now: found by the next period's walk from an older floor, once.
    let start = Instant::now();
    let mut found = Vec::new();
    while start.elapsed() < Duration::from_secs(10) && found.is_empty() {
        found = store
            .retain_tasks(&app, &me, std::slice::from_ref(&q), 10)
            .await
            .unwrap()
            .tasks;
        if found.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(found.iter().map(|t| t.id).collect::<Vec<_>>(), vec![late]);
    assert!(
        store
            .retain_tasks(&app, &me, std::slice::from_ref(&q), 10)
            .await
            .unwrap()
            .tasks
            .is_empty(),
        "claimed once"
    );
}

/// Two stores (two processes' floors) claim one queue while producers create, some inside
/// transactions held open a while (tasks that commit behind the floors) and some rolled
/// back; in the end every committed task was claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_claiming_behind_floors_take_each_task_once() {
    const PRODUCERS: usize = 4;
    const ROUNDS: usize = 60;
    let db = fresh_database().await;
    let options = || PgOptions {
        pool_size: 8,
        ..PgOptions::default()
    };
    let stores = [
        db.store_with(options()).await,
        db.store_with(options()).await,
    ];
    let (app, q) = app_queue(&stores[0]).await;
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let (url, app, q) = (db.url().to_string(), app.clone(), q.clone());
        producers.push(tokio::spawn(async move {
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            let mut committed = Vec::new();
            for r in 0..ROUNDS {
                let n = 1 + (r % 3);
                let tasks: Vec<NewTask> = (0..n).map(|i| task(json!([p, r, i]))).collect();
                let hold = Duration::from_millis(((p * 7 + r * 3) % 20) as u64);
                let keep = (p + r) % 10 != 0;
                let made = conn
                    .transaction(async |conn| {
                        let made = enqueue_in(conn, &app, &q, &tasks).await.unwrap();
                        tokio::time::sleep(hold).await;
                        if keep {
                            Ok(made)
                        } else {
                            Err(diesel::result::Error::RollbackTransaction)
                        }
                    })
                    .await;
                if let Ok(made) = made {
                    committed.extend(made.into_iter().map(|c| c.task().id));
                }
            }
            committed
        }));
    }
    let mut claimers = Vec::new();
    for c in 0..8 {
        let store = stores[c % 2].clone();
        let (app, q, producing) = (app.clone(), q.clone(), producing.clone());
        claimers.push(tokio::spawn(async move {
            let me = worker(&format!("w{c}"));
            let mut got = Vec::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                let batch = store
                    .retain_tasks(&app, &me, std::slice::from_ref(&q), 3)
                    .await
                    .unwrap()
                    .tasks;
                if batch.is_empty() {
                    // Done once nothing is produced and several periods' walks found nothing.
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if !producing.load(std::sync::atomic::Ordering::SeqCst)
                        && since.elapsed() > Duration::from_secs(5)
                    {
                        break got;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                } else {
                    idle_since = None;
                    got.extend(batch.into_iter().map(|t| t.id));
                }
            }
        }));
    }
    let mut committed = Vec::new();
    for p in producers {
        committed.extend(p.await.unwrap());
    }
    producing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "no task claimed twice");
    let committed: HashSet<i64> = committed.into_iter().collect();
    assert_eq!(distinct, committed, "every committed task claimed");
    let client = db.client().await;
    let waiting: i64 = client
        .query_one(
            "SELECT count(*) FROM tasks WHERE state IN ('new', 'retry')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 0, "none left waiting in the table");
}

/// Claims one task of `q` from `store` until one comes or `within` passes.
async fn claim_within(
    store: &pgqueue_postgres::PgStore,
    app: &Namespace,
    q: &QueueName,
    within: Duration,
) -> Option<Value> {
    let me = worker("w");
    let start = Instant::now();
    while start.elapsed() < within {
        let got = store
            .retain_tasks(app, &me, std::slice::from_ref(q), 1)
            .await
            .unwrap();
        if let Some(t) = got.tasks.into_iter().next() {
            return Some(t.payload);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A minute after what was created so far, `payload` is created in `q` by `operator` and
/// claimed by `workers`, whose floor is then above every older task of `q`.
async fn claimed_a_minute_later(
    clock: &pgqueue_ports::ManualClock,
    (workers, operator): (&pgqueue_postgres::PgStore, &pgqueue_postgres::PgStore),
    (app, q): (&Namespace, &QueueName),
    payload: &str,
) {
    clock.advance(TimeDelta::minutes(1));
    created_then_claimed((workers, operator), (app, q), payload).await;
}

/// `payload` is created in `q` by `operator`, then claimed by `workers` (the next task).
async fn created_then_claimed(
    (workers, operator): (&pgqueue_postgres::PgStore, &pgqueue_postgres::PgStore),
    (app, q): (&Namespace, &QueueName),
    payload: &str,
) {
    operator
        .create_tasks(app, q, &[task(json!(payload))])
        .await
        .unwrap();
    assert_eq!(
        claim_within(workers, app, q, Duration::from_secs(5)).await,
        Some(json!(payload))
    );
}

/// The worker's process knows a floor above an old task; an operator's process retries it
/// (one by one, then by status): the worker claims it at once — well before its floors'
/// `FORGET_AFTER`, and the task is older than the trailing walk reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_processs_operator_retry_is_claimed_at_once() {
    let db = fresh_database().await;
    let clock = manual();
    let (workers, operator) = (db.store(clock.clone()).await, db.store(clock.clone()).await);
    let (app, q) = app_queue(&operator).await;
    let old = operator
        .create_tasks(&app, &q, &[task(json!("old 1")), task(json!("old 2"))])
        .await
        .unwrap();
    for made in &old {
        operator.cancel_task(&app, made.task().id).await.unwrap();
    }
    claimed_a_minute_later(&clock, (&workers, &operator), (&app, &q), "young").await;
    let soon = Duration::from_secs(5);
    operator.retry_task(&app, old[0].task().id).await.unwrap();
    assert_eq!(
        claim_within(&workers, &app, &q, soon).await,
        Some(json!("old 1")),
        "retried one by one in another process"
    );
    // The claim of "old 1" taught the worker's floors its key; "old 2" is below it.
    let retried = operator
        .retry_tasks(&app, &q, &[pgqueue_domain::Status::Cancelled], 10)
        .await
        .unwrap();
    assert_eq!(retried, 1);
    assert_eq!(
        claim_within(&workers, &app, &q, soon).await,
        Some(json!("old 2")),
        "retried by status in another process"
    );
}

/// The worker's process knows floors of queue `b`; another process deletes `b` and renames
/// `a`, whose task is older than those floors, to `b`: the worker claims it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_processs_rename_is_claimed_at_once() {
    let db = fresh_database().await;
    let clock = manual();
    let (workers, operator) = (db.store(clock.clone()).await, db.store(clock.clone()).await);
    let (app, a, b) = (ns("app"), queue("a"), queue("b"));
    for name in [&a, &b] {
        operator
            .create_queue(&app, name, &QueuePatch::default())
            .await
            .unwrap();
    }
    operator
        .create_tasks(&app, &a, &[task(json!("from a"))])
        .await
        .unwrap();
    claimed_a_minute_later(&clock, (&workers, &operator), (&app, &b), "from b").await;
    operator.delete_queue(&app, &b).await.unwrap();
    let rename = pgqueue_domain::QueueMeta {
        queue: Some("b".into()),
        ..Default::default()
    };
    operator
        .update_queue(&app, &a, &rename.validate().unwrap())
        .await
        .unwrap();
    assert_eq!(
        claim_within(&workers, &app, &b, Duration::from_secs(5)).await,
        Some(json!("from a")),
        "renamed in another process"
    );
}

/// A transaction open longer than the trailing walk reaches back enqueues at its end (its
/// task's key is the transaction's start), while younger tasks are claimed past it: its
/// commit tells every store to forget the queue's floors, so the task is claimed at once,
/// not a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_transactions_enqueue_is_claimed_at_once_after_its_commit() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let (app, q) = app_queue(&store).await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let (enqueue, enqueue_now) = tokio::sync::oneshot::channel::<()>();
    let (app2, q2) = (app.clone(), q.clone());
    let held = tokio::spawn(async move {
        conn.transaction(async |conn| {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn).await?;
            enqueue_now.await.unwrap();
            enqueue_in(conn, &app2, &q2, &[task(json!("long transaction"))])
                .await
                .unwrap();
            Ok::<_, diesel::result::Error>(())
        })
        .await
        .unwrap();
    });
    // Younger tasks, created and claimed while the transaction is open, 6 s past its start.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        created_then_claimed((&store, &store), (&app, &q), "younger").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    enqueue.send(()).unwrap();
    held.await.unwrap();
    assert_eq!(
        claim_within(&store, &app, &q, Duration::from_secs(5)).await,
        Some(json!("long transaction")),
        "claimed within 5 s of its commit"
    );
}
