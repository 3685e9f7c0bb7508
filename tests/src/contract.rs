//! The storage contract suite: every behaviour of spec §2–§3, written once against the
//! `Store` port (through the `Manager`, as users reach it) and run against every adapter.
//!
//! An adapter instantiates the whole suite with one line in `tests/it/`:
//!
//! ```text
//! pgqueue_tests::store_contract_tests!(crate::memory::subject);
//! ```
//!
//! where `subject` is `async fn(Arc<ManualClock>) -> Subject`, giving a fresh, empty store
//! whose time is the given clock. Fresh per test matters: maintenance operations
//! (`rescue_leases`, `clean_up`) cover every namespace.

use chrono::{DateTime, TimeDelta, Utc};
use pgqueue_app::{Error, Manager};
use pgqueue_domain::{
    Duration, Outcome, Page, QueueMeta, Status, Task, TaskFilter, TaskMeta, TickerMeta, WorkerName,
};
use pgqueue_ports::{ManualClock, Store, TickerScope, Wakeup};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// A store under test, its clock, and whatever must live as long as it (a test database).
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock the store was built with.
    pub clock: Arc<ManualClock>,
    /// Dropped after the test: a database guard, a server, …
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

impl Subject {
    /// A manager of namespace `ns` on this store.
    pub fn manager(&self, ns: &str) -> Manager {
        Manager::new(self.store.clone())
            .with_namespace(ns)
            .expect("test namespace")
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.get()
    }

    /// Moves the store's time forward.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }
}

/// The time every contract test starts at: now, to the second (so stored values round-trip).
pub fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

/// Instantiates every contract test for one adapter. `$make` is a path to
/// `async fn(Arc<ManualClock>) -> Subject`.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(@each $make;
            queue_crud, queue_register_is_an_upsert, queue_rename_carries_tasks_and_delete_cascades,
            queue_listing_is_ordered_and_paginated, task_creation_follows_the_queue, task_batches_are_all_or_nothing,
            retain_takes_the_oldest_due_task, retain_filters_by_queue, retain_sets_worker_start_and_lease,
            release_success, release_failure_backs_off_then_fails, release_is_refused_unless_retained,
            fencing_refuses_other_workers, heartbeat_extends_the_lease, lease_rescue_counts_a_failed_attempt,
            expiry_is_derived_and_final, clean_queue_removes_ended_tasks_now, clean_up_waits_for_retention,
            queue_statuses_count_every_status, list_tasks_filters_and_paginates, namespaces_are_isolated,
            ticker_crud_keeps_timestamps, ticker_maturity_is_claimed_once, queue_tickers_become_tasks,
            next_maturity_measures_the_wait, creating_tasks_wakes_sleepers, concurrent_retainers_never_share,
            retain_for_gives_the_kth_oldest_task_to_the_kth_worker, group_commit_keeps_every_rule,
            group_commit_retainers_never_share);
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let clock = ::std::sync::Arc::new(::pgqueue_ports::ManualClock::new($crate::contract::start_time()));
                $crate::contract::$name($make(clock).await).await;
            }
        )*
    };
}

fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

async fn queue(m: &Manager, name: &str) {
    m.create_queue(QueueMeta {
        queue: Some(name.into()),
        ..Default::default()
    })
    .await
    .expect("create queue");
}

async fn task(m: &Manager, queue: &str, payload: serde_json::Value) -> Task {
    m.create_task(queue, TaskMeta::new(payload))
        .await
        .expect("create task")
}

fn fail(error: serde_json::Value) -> Outcome {
    Outcome::failure(error).expect("a storable error")
}

fn worker(w: &str) -> WorkerName {
    WorkerName::parse(w).expect("worker")
}

/// Create with defaults, conflict on a second create, get, update only given fields, errors.
pub async fn queue_crud(s: Subject) {
    let m = s.manager("crud");
    let q = m
        .create_queue(QueueMeta {
            queue: Some(" Emails ".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.name.as_str(), "emails");
    assert_eq!(
        (q.ttl, q.retries, q.retry_delay, q.lease),
        (
            Duration::from_hours(1),
            3,
            Duration::from_mins(2),
            Duration::from_mins(5)
        )
    );
    assert_eq!(q.namespace.as_str(), "crud");
    let again = m
        .create_queue(QueueMeta {
            queue: Some("emails".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        again.unwrap_err(),
        Error::Conflict("queue already exists".into())
    );
    assert_eq!(m.get_queue("EMAILS").await.unwrap(), q);
    assert!(matches!(m.get_queue("nope").await, Err(Error::NotFound(_))));
    let updated = m
        .update_queue(
            "emails",
            QueueMeta {
                retries: Some(7),
                ttl: Some(Duration::from_secs(90)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.retries, updated.ttl, updated.retry_delay),
        (7, Duration::from_secs(90), Duration::from_mins(2))
    );
    assert_eq!(m.get_queue("emails").await.unwrap(), updated);
    assert!(matches!(
        m.update_queue(
            "nope",
            QueueMeta {
                retries: Some(1),
                ..Default::default()
            }
        )
        .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        m.update_queue("emails", QueueMeta::default()).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.delete_queue("nope").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(m.delete_queue("emails").await.unwrap(), updated);
    assert!(matches!(
        m.get_queue("emails").await,
        Err(Error::NotFound(_))
    ));
}

/// `register_queue` creates with defaults, then applies only the given fields.
pub async fn queue_register_is_an_upsert(s: Subject) {
    let m = s.manager("reg");
    let q = m
        .register_queue(QueueMeta {
            queue: Some("jobs".into()),
            retries: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.retries, q.ttl), (5, Duration::from_hours(1)));
    let q = m
        .register_queue(QueueMeta {
            queue: Some("jobs".into()),
            ttl: Some(Duration::from_secs(10)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.retries, q.ttl), (5, Duration::from_secs(10)));
    assert_eq!(m.list_queues(Page::default()).await.unwrap().count, 1);
}

/// Renaming a queue carries its tasks; renaming onto another conflicts; deleting deletes tasks.
pub async fn queue_rename_carries_tasks_and_delete_cascades(s: Subject) {
    let m = s.manager("ren");
    queue(&m, "old").await;
    queue(&m, "other").await;
    let t = task(&m, "old", json!(1)).await;
    let renamed = m
        .update_queue(
            "old",
            QueueMeta {
                queue: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "new");
    assert_eq!(m.get_task(t.id).await.unwrap().queue.as_str(), "new");
    assert!(matches!(m.get_queue("old").await, Err(Error::NotFound(_))));
    let clash = m
        .update_queue(
            "new",
            QueueMeta {
                queue: Some("other".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
    assert_eq!(m.get_task(t.id).await.unwrap().queue.as_str(), "new");
    m.delete_queue("new").await.unwrap();
    assert!(matches!(m.get_task(t.id).await, Err(Error::NotFound(_))));
}

/// Queues come ordered by name; `count` is the total; `limit` is capped at 100.
pub async fn queue_listing_is_ordered_and_paginated(s: Subject) {
    let m = s.manager("list");
    for i in (0..105).rev() {
        queue(&m, &format!("q{i:03}")).await;
    }
    let all = m.list_queues(Page::new(None, Some(1000))).await.unwrap();
    assert_eq!((all.count, all.items.len()), (105, 100));
    assert_eq!(all.items[0].name.as_str(), "q000");
    assert_eq!(all.items[99].name.as_str(), "q099");
    let page = m.list_queues(Page::new(Some(103), Some(10))).await.unwrap();
    let names: Vec<&str> = page.items.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["q103", "q104"]);
    let empty = m.list_queues(Page::new(None, Some(0))).await.unwrap();
    assert_eq!((empty.count, empty.items.len()), (105, 0));
}

/// A task keeps the queue's retries at creation; dies_at = max(delayed_at, now) + ttl.
pub async fn task_creation_follows_the_queue(s: Subject) {
    let m = s.manager("create");
    queue(&m, "q").await;
    let now = s.now();
    let t = task(&m, "q", json!({"to": "a@b"})).await;
    assert_eq!(
        (t.status(), t.retries(), t.payload.clone()),
        (Status::New, 3, json!({"to": "a@b"}))
    );
    assert_eq!(
        (t.created_at, t.dies_at()),
        (now, now + TimeDelta::hours(1))
    );
    assert_eq!(
        (t.worker(), t.started_at(), t.result().cloned()),
        (None, None, None)
    );
    let null = task(&m, "q", serde_json::Value::Null).await;
    assert_eq!(
        m.get_task(null.id).await.unwrap().payload,
        serde_json::Value::Null
    );
    let delayed = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(2)),
                delayed_at: Some(now + mins(30)),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (delayed.delayed_at(), delayed.dies_at()),
        (Some(now + mins(30)), now + mins(90))
    );
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(9),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        m.get_task(t.id).await.unwrap().retries(),
        3,
        "later queue changes do not touch a task"
    );
    assert_eq!(task(&m, "q", json!(3)).await.retries(), 9);
    let past = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(1)),
                delayed_at: Some(now - secs(1)),
            },
        )
        .await;
    assert!(matches!(
        past,
        Err(Error::Invalid(pgqueue_domain::Error::DelayedInPast))
    ));
    assert!(matches!(
        m.create_task("ghost", TaskMeta::new(json!(1))).await,
        Err(Error::NotFound(_))
    ));
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let doomed = task(&m, "q", json!(4)).await;
    assert_eq!(
        (doomed.status(), doomed.retries(), doomed.finished_at()),
        (Status::Failed, 0, Some(now))
    );
    assert_eq!(
        m.next_task("w", &["q"]).await.unwrap().map(|t| t.id),
        Some(t.id)
    );
}

/// A batch is created in order, in one go; an unknown queue creates nothing.
pub async fn task_batches_are_all_or_nothing(s: Subject) {
    let m = s.manager("batch");
    queue(&m, "q").await;
    let metas: Vec<TaskMeta> = (0..50).map(|i| TaskMeta::new(json!(i))).collect();
    let created = m.create_tasks("q", metas.clone()).await.unwrap();
    assert_eq!(created.len(), 50);
    assert!(created.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        created
            .iter()
            .enumerate()
            .all(|(i, t)| t.payload == json!(i))
    );
    // What create answers is what was stored, field for field, id for id.
    for t in &created {
        assert_eq!(&m.get_task(t.id).await.unwrap(), t);
    }
    assert!(m.create_tasks("ghost", metas).await.is_err());
    let mut with_bad = vec![TaskMeta::new(json!(1)); 3];
    with_bad.push(TaskMeta {
        payload: Some(json!(1)),
        delayed_at: Some(s.now() - secs(5)),
    });
    assert!(m.create_tasks("q", with_bad).await.is_err());
    assert_eq!(
        m.list_tasks(&TaskFilter::default()).await.unwrap().count,
        50
    );
}

/// Oldest first (creation, then id); delayed tasks wait; retries wait for their backoff.
pub async fn retain_takes_the_oldest_due_task(s: Subject) {
    let m = s.manager("order");
    queue(&m, "q").await;
    let first = task(&m, "q", json!(1)).await;
    let delayed = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(0)),
                delayed_at: Some(s.now() + mins(10)),
            },
        )
        .await
        .unwrap();
    s.advance(secs(1));
    let second = task(&m, "q", json!(2)).await;
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, first.id);
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, second.id);
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    s.advance(mins(10));
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, delayed.id);
    let batch = m
        .create_tasks("q", (0..5).map(|i| TaskMeta::new(json!(i))).collect())
        .await
        .unwrap();
    let got = m.next_tasks("w", &["q"], 3).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|t| t.id).collect();
    assert_eq!(ids, batch[..3].iter().map(|t| t.id).collect::<Vec<_>>());
}

/// One queue, several, or (empty list) any; unknown names match nothing.
pub async fn retain_filters_by_queue(s: Subject) {
    let m = s.manager("filter");
    for q in ["a", "b", "c"] {
        queue(&m, q).await;
    }
    let ta = task(&m, "a", json!("a")).await;
    let tb = task(&m, "b", json!("b")).await;
    let tc = task(&m, "c", json!("c")).await;
    assert_eq!(m.next_task("w", &["ghost"]).await.unwrap(), None);
    assert_eq!(m.next_task("w", &["c"]).await.unwrap().unwrap().id, tc.id);
    assert_eq!(
        m.next_task("w", &["c", "b"]).await.unwrap().unwrap().id,
        tb.id
    );
    assert_eq!(m.next_task("w", &["c", "b"]).await.unwrap(), None);
    assert_eq!(m.next_task_from("w", "a").await.unwrap().unwrap().id, ta.id);
    assert_eq!(m.next_task_from("w", "a").await.unwrap(), None);
    assert!(matches!(
        m.next_task_from("w", "ghost").await,
        Err(Error::NotFound(_))
    ));
    task(&m, "b", json!("b2")).await;
    assert_eq!(
        m.next_task("w", &[]).await.unwrap().unwrap().payload,
        json!("b2")
    );
}

/// Retaining sets worker, started_at, lease_expires_at = now + lease, and clears the result.
pub async fn retain_sets_worker_start_and_lease(s: Subject) {
    let m = s.manager("fields");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(30)),
        retry_delay: Some(Duration::ZERO),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    s.advance(secs(5));
    let r = m.next_task(" host@1 ", &["q"]).await.unwrap().unwrap();
    assert_eq!(
        (r.id, r.status(), r.worker()),
        (t.id, Status::Retained, Some("host@1"))
    );
    assert_eq!(
        (r.started_at(), r.lease_expires_at()),
        (Some(s.now()), Some(s.now() + secs(30)))
    );
    m.release_task(t.id, fail(json!("boom"))).await.unwrap();
    let again = m.next_task("host@2", &["q"]).await.unwrap().unwrap();
    assert_eq!(
        (again.result().cloned(), again.worker()),
        (None, Some("host@2"))
    );
    assert_eq!(m.get_task(t.id).await.unwrap(), again);
}

/// Success: released, finished_at = now, result stored.
pub async fn release_success(s: Subject) {
    let m = s.manager("ok");
    queue(&m, "q").await;
    let t = task(&m, "q", json!(1)).await;
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(3));
    let done = m
        .release_task(t.id, Outcome::success(Some(json!({"sent": true}))).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (done.status(), done.finished_at(), done.result().cloned()),
        (Status::Released, Some(s.now()), Some(json!({"sent": true})))
    );
    assert_eq!(done.retries(), 3);
    assert_eq!(m.get_task(t.id).await.unwrap(), done);
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap();
    assert_eq!(
        m.release_task(t2.id, Outcome::done())
            .await
            .unwrap()
            .result()
            .cloned(),
        None
    );
}

/// Defaults (3 retries, 2 min): waits of 2 then 8 minutes, then failed; errors stored exactly.
pub async fn release_failure_backs_off_then_fails(s: Subject) {
    let m = s.manager("backoff");
    queue(&m, "q").await;
    let t = task(&m, "q", json!(1)).await;
    let error = json!({"error": "smtp down", "code": 451, "nested": [1, {"x": null}]});
    m.next_task("w", &[]).await.unwrap().unwrap();
    let r1 = m.release_task(t.id, fail(error.clone())).await.unwrap();
    assert_eq!(
        (r1.status(), r1.retries(), r1.result().cloned()),
        (Status::Retry, 2, Some(error.clone()))
    );
    assert_eq!(
        (r1.delayed_at(), r1.started_at()),
        (Some(s.now() + mins(2)), None)
    );
    s.advance(mins(2) - secs(1));
    assert_eq!(
        m.next_task("w", &[]).await.unwrap(),
        None,
        "still backing off"
    );
    s.advance(secs(1));
    m.next_task("w", &[])
        .await
        .unwrap()
        .expect("due after 2 minutes");
    let r2 = m.release_task(t.id, fail(json!("again"))).await.unwrap();
    assert_eq!(
        (r2.status(), r2.retries(), r2.delayed_at()),
        (Status::Retry, 1, Some(s.now() + mins(8)))
    );
    s.advance(mins(8));
    m.next_task("w", &[])
        .await
        .unwrap()
        .expect("due after 8 minutes");
    let r3 = m.release_task(t.id, fail(json!("last"))).await.unwrap();
    assert_eq!(
        (r3.status(), r3.retries(), r3.finished_at()),
        (Status::Failed, 0, Some(s.now()))
    );
    assert_eq!(r3.result().cloned(), Some(json!("last")));
    s.advance(TimeDelta::hours(1));
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    assert_eq!(
        m.get_task(t.id).await.unwrap().status(),
        Status::Failed,
        "failed never turns expired"
    );
}

/// Unknown → not found; not retained (new, finished, expired while new) → conflict; a retained
/// task past dies_at may still be released.
pub async fn release_is_refused_unless_retained(s: Subject) {
    let m = s.manager("refuse");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_mins(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(matches!(
        m.release_task(999_999, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
    let t = task(&m, "q", json!(1)).await;
    assert_eq!(
        m.release_task(t.id, Outcome::done()).await.unwrap_err(),
        Error::Conflict("task is not retained".into())
    );
    s.advance(mins(10));
    assert_eq!(m.get_task(t.id).await.unwrap().status(), Status::Expired);
    assert!(matches!(
        m.release_task(t.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(mins(11));
    assert_eq!(m.get_task(t2.id).await.unwrap().status(), Status::Expired);
    assert_eq!(
        m.release_task(t2.id, Outcome::done())
            .await
            .unwrap()
            .status(),
        Status::Released
    );
    assert!(matches!(
        m.release_task(t2.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
}

/// A release or heartbeat naming another worker is refused and changes nothing.
pub async fn fencing_refuses_other_workers(s: Subject) {
    let m = s.manager("fence");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(30)),
        retry_delay: Some(Duration::ZERO),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    let held = m.next_task("a", &[]).await.unwrap().unwrap();
    let refused = m.release_task(t.id, Outcome::done().by(worker("b"))).await;
    assert_eq!(
        refused.unwrap_err(),
        Error::Conflict("task is not retained by worker \"b\"".into())
    );
    assert!(matches!(
        m.heartbeat(t.id, "b").await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(m.get_task(t.id).await.unwrap(), held);
    // a's lease passes, the task is rescued and retained by b; a's late release is refused.
    s.advance(secs(30));
    assert_eq!(s.store.rescue_leases(100).await.unwrap().len(), 1);
    let b_holds = m.next_task("b", &[]).await.unwrap().unwrap();
    assert_eq!(b_holds.id, t.id);
    assert!(matches!(
        m.release_task(t.id, Outcome::done().by(worker("a"))).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(m.get_task(t.id).await.unwrap(), b_holds);
    let done = m
        .release_task(
            t.id,
            Outcome::success(Some(json!("b"))).unwrap().by(worker("b")),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), Status::Released);
}

/// Heartbeats push the lease to now + lease; rescue waits for it.
pub async fn heartbeat_extends_the_lease(s: Subject) {
    let m = s.manager("beat");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    assert!(matches!(
        m.heartbeat(t.id, "w").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.heartbeat(424_242, "w").await,
        Err(Error::NotFound(_))
    ));
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(50));
    let beat = m.heartbeat(t.id, "w").await.unwrap();
    assert_eq!(
        (beat.lease_expires_at(), beat.status()),
        (Some(s.now() + secs(60)), Status::Retained)
    );
    s.advance(secs(50));
    assert!(
        s.store.rescue_leases(100).await.unwrap().is_empty(),
        "the heartbeat kept it"
    );
    assert_eq!(m.get_task(t.id).await.unwrap().status(), Status::Retained);
}

/// A passed lease counts as a failed attempt with {"error":"lease expired"} and backs off;
/// the last attempt fails; an expired task is left expired.
pub async fn lease_rescue_counts_a_failed_attempt(s: Subject) {
    let m = s.manager("rescue");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(10)),
        retries: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(9));
    assert!(s.store.rescue_leases(100).await.unwrap().is_empty());
    s.advance(secs(1));
    let rescued = s.store.rescue_leases(100).await.unwrap();
    assert_eq!(rescued.len(), 1);
    let r = &rescued[0];
    assert_eq!((r.id, r.status(), r.retries()), (t.id, Status::Retry, 1));
    assert_eq!(
        (r.result().cloned(), r.delayed_at()),
        (
            Some(json!({"error": "lease expired"})),
            Some(s.now() + mins(2))
        )
    );
    assert_eq!(m.get_task(t.id).await.unwrap(), *r);
    s.advance(mins(2));
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(secs(10));
    let last = s.store.rescue_leases(100).await.unwrap();
    assert_eq!(
        (last[0].status(), last[0].finished_at()),
        (Status::Failed, Some(s.now()))
    );
    // A retained task whose dies_at passed stays expired: no rescue, no new attempt.
    m.update_queue(
        "q",
        QueueMeta {
            ttl: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(secs(20));
    assert!(s.store.rescue_leases(100).await.unwrap().is_empty());
    assert_eq!(m.get_task(t2.id).await.unwrap().status(), Status::Expired);
}

/// Waiting tasks read as expired from dies_at on, without a write, and are never retained.
pub async fn expiry_is_derived_and_final(s: Subject) {
    let m = s.manager("expiry");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    let done = task(&m, "q", json!(2)).await;
    m.next_tasks("w", &[], 2).await.unwrap();
    m.release_task(done.id, Outcome::done()).await.unwrap();
    let waiting = task(&m, "q", json!(3)).await;
    s.advance(secs(59));
    assert_eq!(m.get_task(waiting.id).await.unwrap().status(), Status::New);
    s.advance(secs(1));
    assert_eq!(
        m.get_task(waiting.id).await.unwrap().status(),
        Status::Expired
    );
    assert_eq!(
        m.get_task(t.id).await.unwrap().status(),
        Status::Expired,
        "retained past dies_at reads expired"
    );
    assert_eq!(
        m.get_task(done.id).await.unwrap().status(),
        Status::Released
    );
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    let expired = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Expired),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        expired.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t.id, waiting.id]
    );
}

/// `clean_queue` deletes the queue's released, failed and expired tasks now and returns them.
pub async fn clean_queue_removes_ended_tasks_now(s: Subject) {
    let m = s.manager("clean");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_secs(60)),
        retries: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    queue(&m, "other").await;
    let ok = task(&m, "q", json!("ok")).await;
    let bad = task(&m, "q", json!("bad")).await;
    m.next_tasks("w", &["q"], 2).await.unwrap();
    m.release_task(ok.id, Outcome::done()).await.unwrap();
    m.release_task(bad.id, fail(json!("x"))).await.unwrap();
    let old = task(&m, "q", json!("old")).await;
    s.advance(secs(30));
    let young = task(&m, "q", json!("young")).await;
    let elsewhere = task(&m, "other", json!(1)).await;
    m.next_task("w", &["other"]).await.unwrap();
    m.release_task(elsewhere.id, Outcome::done()).await.unwrap();
    s.advance(secs(30));
    let cleaned = m.clean_queue("q").await.unwrap();
    assert_eq!(
        cleaned.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ok.id, bad.id, old.id]
    );
    assert_eq!(
        cleaned.iter().map(|t| t.status()).collect::<Vec<_>>(),
        vec![Status::Released, Status::Failed, Status::Expired]
    );
    assert_eq!(m.get_task(young.id).await.unwrap().status(), Status::New);
    assert!(
        m.get_task(elsewhere.id).await.is_ok(),
        "other queues untouched"
    );
    assert!(m.clean_queue("ghost").await.unwrap().is_empty());
}

/// Background clean-up deletes ended tasks once their queue's ttl has passed since the end,
/// in every namespace, in bounded batches.
pub async fn clean_up_waits_for_retention(s: Subject) {
    let a = s.manager("ns-a");
    let b = s.manager("ns-b");
    for m in [&a, &b] {
        m.create_queue(QueueMeta {
            queue: Some("q".into()),
            ttl: Some(Duration::from_mins(10)),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let done = task(&a, "q", json!(1)).await;
    a.next_task("w", &[]).await.unwrap();
    s.advance(mins(1));
    a.release_task(done.id, Outcome::done()).await.unwrap();
    let expiring: Vec<Task> = b
        .create_tasks("q", vec![TaskMeta::new(json!(0)); 5])
        .await
        .unwrap();
    let alive = task(&a, "q", json!(2)).await;
    s.advance(mins(10) - secs(1));
    assert_eq!(
        s.store.clean_up(100).await.unwrap(),
        0,
        "released 1 minute in; kept for 10"
    );
    s.advance(secs(1));
    assert_eq!(s.store.clean_up(100).await.unwrap(), 1);
    assert!(a.get_task(done.id).await.is_err());
    s.advance(mins(9));
    // b's tasks expired at 10 min and are kept until 20 min.
    assert_eq!(s.store.clean_up(100).await.unwrap(), 0);
    s.advance(mins(1));
    assert_eq!(s.store.clean_up(2).await.unwrap(), 2, "bounded batch");
    assert_eq!(
        s.store.clean_up(100).await.unwrap(),
        4,
        "the rest of b's and a's expired one"
    );
    assert!(b.get_task(expiring[4].id).await.is_err());
    assert!(a.get_task(alive.id).await.is_err());
}

/// Every queue × every status, zeros included.
pub async fn queue_statuses_count_every_status(s: Subject) {
    let m = s.manager("stats");
    queue(&m, "a").await;
    queue(&m, "b").await;
    let tasks = m
        .create_tasks("a", vec![TaskMeta::new(json!(1)); 4])
        .await
        .unwrap();
    m.next_tasks("w", &["a"], 3).await.unwrap();
    m.release_task(tasks[0].id, Outcome::done()).await.unwrap();
    m.release_task(tasks[1].id, fail(json!("e"))).await.unwrap();
    let stats = m.queue_statuses().await.unwrap();
    assert_eq!(stats.len(), 12);
    let get = |q: &str, st: Status| {
        stats
            .iter()
            .find(|c| c.queue.as_str() == q && c.status == st)
            .map(|c| c.count)
    };
    assert_eq!(
        Status::ALL.map(|st| get("a", st)),
        [Some(1), Some(1), Some(1), Some(1), Some(0), Some(0)],
        "new, retained, retry, released, failed, expired"
    );
    assert_eq!(Status::ALL.map(|st| get("b", st)), [Some(0); 6]);
    assert_eq!(stats[0].queue.as_str(), "a");
}

/// Tasks listed by id, filtered by queue and status, paginated with a true count.
pub async fn list_tasks_filters_and_paginates(s: Subject) {
    let m = s.manager("tasks");
    queue(&m, "a").await;
    queue(&m, "b").await;
    let a = m
        .create_tasks("a", vec![TaskMeta::new(json!("a")); 120])
        .await
        .unwrap();
    let b = task(&m, "b", json!("b")).await;
    m.next_task("w", &["a"]).await.unwrap();
    let all = m.list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!((all.count, all.items.len()), (121, 100));
    assert!(all.items.windows(2).all(|w| w[0].id < w[1].id));
    let only_b = m
        .list_tasks(&TaskFilter {
            queue: Some("b".parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        only_b.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![b.id]
    );
    let retained = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Retained),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((retained.count, retained.items[0].id), (1, a[0].id));
    let page = m
        .list_tasks(&TaskFilter {
            queue: Some("a".parse().unwrap()),
            status: Some(Status::New),
            page: Page::new(Some(110), Some(5)),
        })
        .await
        .unwrap();
    assert_eq!(page.count, 119);
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        a[111..116].iter().map(|t| t.id).collect::<Vec<_>>()
    );
    let none = m
        .list_tasks(&TaskFilter {
            page: Page::new(None, Some(0)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((none.count, none.items.len()), (121, 0));
}

/// Namespaces never see each other's queues, tasks or tickers.
pub async fn namespaces_are_isolated(s: Subject) {
    let a = s.manager("tenant-a");
    let b = s.manager("tenant-b");
    queue(&a, "q").await;
    queue(&b, "q").await;
    let ta = task(&a, "q", json!("a")).await;
    assert!(matches!(b.get_task(ta.id).await, Err(Error::NotFound(_))));
    assert!(matches!(
        b.release_task(ta.id, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(b.next_task("w", &[]).await.unwrap(), None);
    assert_eq!(b.list_tasks(&TaskFilter::default()).await.unwrap().count, 0);
    b.update_queue(
        "q",
        QueueMeta {
            retries: Some(9),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(a.get_queue("q").await.unwrap().retries, 3);
    b.delete_queue("q").await.unwrap();
    assert!(a.get_task(ta.id).await.is_ok());
    a.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(matches!(b.get_ticker("t").await, Err(Error::NotFound(_))));
    assert_eq!(b.next_ticker().await.unwrap(), None);
    let c = s.manager("tenant-c");
    c.create_ticker(TickerMeta {
        ticker: Some("only".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let names: Vec<String> = a
        .list_namespaces()
        .await
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, vec!["tenant-a", "tenant-c"]);
}

/// Ticker CRUD; updating or re-registering keeps the timestamp; a ticker queue must exist.
pub async fn ticker_crud_keeps_timestamps(s: Subject) {
    let m = s.manager("tick");
    let t = m
        .create_ticker(TickerMeta {
            ticker: Some(" Hourly ".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (t.name.as_str(), t.payload.clone(), t.interval, t.timestamp),
        ("hourly", json!({}), Duration::from_mins(1), None)
    );
    assert!(matches!(
        m.create_ticker(TickerMeta {
            ticker: Some("hourly".into()),
            ..Default::default()
        })
        .await,
        Err(Error::Conflict(_))
    ));
    let claimed = m.next_ticker().await.unwrap().unwrap();
    assert_eq!(claimed.timestamp, Some(s.now()));
    let updated = m
        .update_ticker(
            "hourly",
            TickerMeta {
                payload: Some(json!({"k": 1})),
                interval: Some(Duration::from_secs(5)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.payload.clone(), updated.interval, updated.timestamp),
        (json!({"k": 1}), Duration::from_secs(5), Some(s.now()))
    );
    let reg = m
        .register_ticker(TickerMeta {
            ticker: Some("hourly".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        reg.timestamp,
        Some(s.now()),
        "re-registering does not fire again"
    );
    assert_eq!(m.next_ticker().await.unwrap(), None);
    m.create_ticker(TickerMeta {
        ticker: Some("daily".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let clash = m
        .update_ticker(
            "hourly",
            TickerMeta {
                ticker: Some("daily".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(clash, Err(Error::Conflict(_))));
    let renamed = m
        .update_ticker(
            "hourly",
            TickerMeta {
                ticker: Some("often".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.timestamp),
        ("often", Some(s.now()))
    );
    let list = m.list_tickers(Page::default()).await.unwrap();
    assert_eq!(
        list.items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["daily", "often"]
    );
    assert!(matches!(
        m.get_ticker("hourly").await,
        Err(Error::NotFound(_))
    ));
    let ghost_queue = TickerMeta {
        ticker: Some("q".into()),
        queue: Some(Some("ghost".into())),
        ..Default::default()
    };
    assert!(matches!(
        m.create_ticker(ghost_queue).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        m.delete_ticker("daily").await.unwrap().name.as_str(),
        "daily"
    );
    assert!(matches!(
        m.delete_ticker("daily").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        m.create_ticker(TickerMeta {
            ticker: Some("next".into()),
            ..Default::default()
        })
        .await,
        Err(Error::Invalid(_))
    ));
}

/// A matured ticker is claimed once; the next maturity is one interval after the claim.
pub async fn ticker_maturity_is_claimed_once(s: Subject) {
    let m = s.manager("mature");
    m.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        interval: Some(Duration::from_secs(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let first = m.next_ticker().await.unwrap().unwrap();
    assert_eq!(first.timestamp, Some(s.now()));
    assert_eq!(m.next_ticker().await.unwrap(), None);
    s.advance(secs(9));
    assert_eq!(m.next_ticker().await.unwrap(), None);
    s.advance(secs(1));
    assert_eq!(
        m.next_ticker().await.unwrap().unwrap().timestamp,
        Some(s.now())
    );
    assert_eq!(m.next_ticker().await.unwrap(), None);
}

/// Tickers with a queue are not delivered; the server turns each maturity into one task, and
/// skips (but claims) a maturity whose queue was deleted.
pub async fn queue_tickers_become_tasks(s: Subject) {
    let m = s.manager("qt");
    queue(&m, "reports").await;
    let meta = TickerMeta {
        ticker: Some("nightly".into()),
        queue: Some(Some("reports".into())),
        payload: Some(json!({"r": 1})),
        ..Default::default()
    };
    m.create_ticker(meta).await.unwrap();
    assert_eq!(
        m.next_ticker().await.unwrap(),
        None,
        "queue tickers are not delivered"
    );
    let fired = s.store.fire_queue_tickers(10).await.unwrap();
    assert_eq!(fired.len(), 1);
    let t = fired[0].task.clone().expect("a task");
    assert_eq!(
        (t.queue.as_str(), t.payload.clone(), t.namespace.as_str()),
        ("reports", json!({"r": 1}), "qt")
    );
    assert!(s.store.fire_queue_tickers(10).await.unwrap().is_empty());
    s.advance(mins(1));
    m.delete_queue("reports").await.unwrap();
    let skipped = s.store.fire_queue_tickers(10).await.unwrap();
    assert_eq!((skipped.len(), skipped[0].task.clone()), (1, None));
    assert_eq!(
        m.get_ticker("nightly").await.unwrap().timestamp,
        Some(s.now())
    );
}

/// next_maturity tells how long until the earliest maturity of its scope.
pub async fn next_maturity_measures_the_wait(s: Subject) {
    let m = s.manager("wait");
    let scope = TickerScope::Deliveries(m.namespace().clone());
    assert_eq!(s.store.next_maturity(&scope).await.unwrap(), None);
    m.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        interval: Some(Duration::from_secs(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.store.next_maturity(&scope).await.unwrap(),
        Some(std::time::Duration::ZERO)
    );
    m.next_ticker().await.unwrap().unwrap();
    s.advance(secs(10));
    assert_eq!(
        s.store.next_maturity(&scope).await.unwrap(),
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(
        s.store.next_maturity(&TickerScope::Queued).await.unwrap(),
        None
    );
}

/// Creating tasks signals their queue, so sleeping workers wake without polling.
pub async fn creating_tasks_wakes_sleepers(s: Subject) {
    let m = s.manager("wake");
    queue(&m, "q").await;
    let mut wakeups = s.store.signal().subscribe();
    task(&m, "q", json!(1)).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match wakeups.recv().await {
                Ok(Wakeup::Task { namespace, queue }) => return (namespace, queue),
                Ok(_) => continue,
                Err(e) => panic!("signal failed: {e}"),
            }
        }
    })
    .await
    .expect("a wake-up within 5 s");
    assert_eq!((got.0.as_str(), got.1.as_str()), ("wake", "q"));
}

/// 8 concurrent retainers drain 2,000 tasks: each retained and released exactly once.
pub async fn concurrent_retainers_never_share(s: Subject) {
    drain_concurrently(s.manager("drain")).await;
}

/// The same through a manager that coalesces the single retains and releases (as the HTTP
/// server's does): still each task exactly once, to the caller that asked.
pub async fn group_commit_retainers_never_share(s: Subject) {
    drain_concurrently(s.manager("drain").with_group_commit()).await;
}

/// A one-statement claim for several workers: oldest first, the k-th task to the k-th
/// worker, as many as are available, each fenced to its own worker.
pub async fn retain_for_gives_the_kth_oldest_task_to_the_kth_worker(s: Subject) {
    let m = s.manager("many");
    for q in ["a", "b"] {
        queue(&m, q).await;
    }
    let a1 = task(&m, "a", json!(1)).await;
    s.advance(secs(1));
    task(&m, "b", json!("b")).await;
    s.advance(secs(1));
    let a2 = task(&m, "a", json!(2)).await;
    let a = [pgqueue_domain::QueueName::parse("a").unwrap()];
    let workers = [worker("w1"), worker("w2"), worker("w3")];
    let got = s
        .store
        .retain_tasks_for(m.namespace(), &workers, &a)
        .await
        .unwrap();
    let shape: Vec<(i64, Option<&str>, Status)> =
        got.iter().map(|t| (t.id, t.worker(), t.status())).collect();
    assert_eq!(
        shape,
        vec![
            (a1.id, Some("w1"), Status::Retained),
            (a2.id, Some("w2"), Status::Retained)
        ]
    );
    assert!(matches!(
        m.release_task(a1.id, Outcome::done().by(worker("w2")))
            .await,
        Err(Error::Conflict(_))
    ));
    m.release_task(a2.id, Outcome::done().by(worker("w2")))
        .await
        .unwrap();
    // Any queue; nobody asked → nothing claimed.
    let rest = s
        .store
        .retain_tasks_for(m.namespace(), &workers[..1], &[])
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload, json!("b"));
    assert!(
        s.store
            .retain_tasks_for(m.namespace(), &[], &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Group commit changes how calls reach the store, not what they mean: order, filters,
/// not-found queues, fencing and refusals answer as without it.
pub async fn group_commit_keeps_every_rule(s: Subject) {
    let m = s.manager("coalesced").with_group_commit();
    for q in ["a", "b"] {
        queue(&m, q).await;
    }
    let a = task(&m, "a", json!("a")).await;
    s.advance(secs(1));
    let b = task(&m, "b", json!("b")).await;
    assert_eq!(m.next_task("w", &["b"]).await.unwrap().unwrap().id, b.id);
    assert!(matches!(
        m.next_task_from("w", "ghost").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(m.next_task_from("w", "b").await.unwrap(), None);
    let got = m.next_task("w", &[]).await.unwrap().unwrap();
    assert_eq!((got.id, got.worker()), (a.id, Some("w")));
    assert!(matches!(
        m.release_task(a.id, Outcome::done().by(worker("x"))).await,
        Err(Error::Conflict(_))
    ));
    let done = m
        .release_task(a.id, fail(json!("boom")).by(worker("w")))
        .await
        .unwrap();
    assert_eq!(
        (done.status(), done.result().cloned()),
        (Status::Retry, Some(json!("boom")))
    );
    assert!(matches!(
        m.release_task(a.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.release_task(999_999_999, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
}

/// 8 concurrent retainers on `m` drain 2,000 tasks: each retained and released exactly once.
async fn drain_concurrently(m: Manager) {
    queue(&m, "q").await;
    let created = m
        .create_tasks("q", (0..2000).map(|i| TaskMeta::new(json!(i))).collect())
        .await
        .unwrap();
    let mut workers = Vec::new();
    for w in 0..8 {
        let m = m.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let name = format!("w{w}");
            while let Some(t) = m.next_task(&name, &["q"]).await.expect("retain") {
                m.release_task(t.id, Outcome::done().by(worker(&name)))
                    .await
                    .expect("release");
                mine.push(t.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for id in w.await.expect("worker") {
            total += 1;
            assert!(seen.insert(id), "task {id} retained twice");
        }
    }
    assert_eq!(total, 2000);
    assert_eq!(seen, created.iter().map(|t| t.id).collect::<HashSet<_>>());
    let released = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Released),
            page: Page::new(None, Some(0)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(released.count, 2000);
}
