//! The background-runtime suite: the worker runtime, the scheduler, lease rescue and
//! clean-up, on real time, written once and run against every adapter.
//!
//! ```text
//! pgqueue_tests::runtime_tests!(crate::memory::realtime);
//! ```
//!
//! where `realtime` is `async fn() -> Realtime`: a fresh store on the storage's own clock.

use pgqueue_app::{Error, Manager, Runtime, RuntimeConfig, Worker};
use pgqueue_domain::{
    Duration as WireDuration, EventFilter, Outcome, Page, QueueMeta, Status, TaskFilter, TaskMeta,
    TickerMeta, WorkerName,
};
use pgqueue_ports::Store;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A store on real time and whatever must outlive it.
pub struct Realtime {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

impl Realtime {
    /// A manager of namespace `ns`.
    pub fn manager(&self, ns: &str) -> Manager {
        Manager::new(self.store.clone())
            .with_namespace(ns)
            .expect("namespace")
    }
}

/// Instantiates every runtime test for one adapter.
#[macro_export]
macro_rules! runtime_tests {
    ($make:path) => {
        $crate::runtime_tests!(@list (@each $make;));
    };
    (@names) => {
        $crate::runtime_tests!(@list (@strings))
    };
    // The one list of runtime tests; `every_runtime_test_is_listed` holds it equal to the
    // `pub async fn …(rt: Realtime)` of this file.
    (@list ($($prefix:tt)*)) => {
        $crate::runtime_tests! { $($prefix)*
            worker_runs_handlers_and_stores_results, worker_retries_follow_the_backoff, worker_respects_the_concurrency_limit,
            killed_worker_task_is_rescued_and_completed_elsewhere, shutdown_waits_for_handlers_in_flight,
            prefetched_tasks_wait_for_a_slot_and_run_at_shutdown,
            shutdown_leaves_overdue_handlers_to_rescue, heartbeats_keep_long_handlers_alive, worker_gives_up_a_task_taken_from_it,
            queue_ticker_fires_once_per_maturity_across_runtimes, ticker_created_during_a_long_sleep_fires_on_time,
            ticker_loop_delivers_matured_tickers, clean_up_covers_every_namespace_and_queue,
            a_cancelled_handler_sees_its_signal_and_stops,
            a_worker_held_back_by_max_running_runs_at_the_limit_without_spinning,
            the_runtime_forgets_events_past_their_retention,
        }
    };
    (@strings $($name:ident),* $(,)?) => { &[$(stringify!($name)),*] };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::runtime::$name($make().await).await;
            }
        )*
    };
}

async fn queue(m: &Manager, name: &str, meta: QueueMeta) {
    m.create_queue(QueueMeta {
        queue: Some(name.into()),
        ..meta
    })
    .await
    .expect("queue");
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count(m: &Manager, status: Status) -> u64 {
    let filter = TaskFilter {
        status: Some(status),
        page: Page::new(None, Some(0)),
        ..Default::default()
    };
    m.list_tasks(&filter).await.expect("list").count
}

/// A shutdown future and the switch that resolves it.
fn shutdown_switch() -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Starts `m`'s background runtime with `config`: the switch that stops it, and its task.
fn spawn_runtime(
    m: &Manager,
    config: RuntimeConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, shutdown) = shutdown_switch();
    (
        stop,
        tokio::spawn(Runtime::new(m.clone(), config).run(shutdown)),
    )
}

fn fast(worker: Worker) -> Worker {
    worker.poll_interval(Duration::from_millis(50))
}

fn fast_runtime(m: &Manager) -> Runtime {
    Runtime::new(
        m.clone(),
        RuntimeConfig {
            rescue_interval: Duration::from_millis(100),
            ..Default::default()
        },
    )
}

/// Handlers get the payload; values are stored as results, errors as JSON strings, panics as
/// `"panic: …"` failures.
pub async fn worker_runs_handlers_and_stores_results(rt: Realtime) {
    let m = rt.manager("handlers");
    queue(
        &m,
        "q",
        QueueMeta {
            retries: Some(1),
            ..Default::default()
        },
    )
    .await;
    let ok = m
        .create_task("q", TaskMeta::new(json!({"op": "ok", "n": 7})))
        .await
        .unwrap()
        .into_task();
    let err = m
        .create_task("q", TaskMeta::new(json!({"op": "err"})))
        .await
        .unwrap()
        .into_task();
    let boom = m
        .create_task("q", TaskMeta::new(json!({"op": "panic"})))
        .await
        .unwrap()
        .into_task();
    let worker = fast(Worker::new(m.clone()))
        .name("tester@1")
        .unwrap()
        .handle("q", |payload: Value| async move {
            match payload["op"].as_str() {
                Some("ok") => Ok(json!({"echo": payload})),
                Some("err") => Err(format!("bad input {}", payload["op"])),
                _ => panic!("kaboom"),
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(10), "all three finished", || async {
        (count(&m, Status::Released).await + count(&m, Status::Failed).await == 3).then_some(())
    })
    .await;
    let _ = stop.send(());
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        (report.succeeded, report.failed, report.abandoned),
        (1, 2, 0)
    );
    let ok = m.get_task(ok.id).await.unwrap();
    assert_eq!(
        (ok.status(), ok.result().cloned(), ok.worker()),
        (
            Status::Released,
            Some(json!({"echo": {"op": "ok", "n": 7}})),
            Some("tester@1")
        )
    );
    let err = m.get_task(err.id).await.unwrap();
    assert_eq!(
        (err.status(), err.result().cloned()),
        (Status::Failed, Some(json!("bad input \"err\"")))
    );
    let boom = m.get_task(boom.id).await.unwrap();
    assert_eq!(
        (boom.status(), boom.result().cloned()),
        (Status::Failed, Some(json!("panic: kaboom")))
    );
}

/// A failing handler is called again after retry_delay × k², then the task fails.
pub async fn worker_retries_follow_the_backoff(rt: Realtime) {
    let m = rt.manager("backoff");
    queue(
        &m,
        "q",
        QueueMeta {
            retries: Some(3),
            retry_delay: Some(WireDuration::from_millis(150)),
            ..Default::default()
        },
    )
    .await;
    let t = m
        .create_task("q", TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = calls.clone();
    let worker = fast(Worker::new(m.clone()))
        .handle("q", move |_| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(Instant::now());
                Err::<Value, _>("always")
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(10), "the task to fail", || async {
        (m.get_task(t.id).await.unwrap().status() == Status::Failed).then_some(())
    })
    .await;
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] >= Duration::from_millis(150),
        "first retry after 1×150ms, was {:?}",
        gaps[0]
    );
    assert!(
        gaps[1] >= Duration::from_millis(600),
        "second retry after 4×150ms, was {:?}",
        gaps[1]
    );
    assert_eq!(
        m.get_task(t.id).await.unwrap().result().cloned(),
        Some(json!("always"))
    );
}

/// Never more than `concurrency` handlers at once, and the limit is actually used.
pub async fn worker_respects_the_concurrency_limit(rt: Realtime) {
    let m = rt.manager("limit");
    queue(&m, "q", QueueMeta::default()).await;
    m.create_tasks("q", vec![TaskMeta::new(json!(1)); 24])
        .await
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n, mx) = (now.clone(), max.clone());
    let worker = fast(Worker::new(m.clone()))
        .concurrency(3)
        .handle("q", move |_| {
            let (n, mx) = (n.clone(), mx.clone());
            async move {
                let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                mx.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(Value::Null)
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(10), "all released", || async {
        (count(&m, Status::Released).await == 24).then_some(())
    })
    .await;
    let _ = stop.send(());
    assert_eq!(run.await.unwrap().unwrap().succeeded, 24);
    assert_eq!(max.load(Ordering::SeqCst), 3);
}

/// A worker dropped mid-task: the task is rescued after its lease and completed by another
/// worker; the first worker's late release is refused.
pub async fn killed_worker_task_is_rescued_and_completed_elsewhere(rt: Realtime) {
    let m = rt.manager("killed");
    queue(
        &m,
        "q",
        QueueMeta {
            lease: Some(WireDuration::from_millis(400)),
            retry_delay: Some(WireDuration::ZERO),
            ..Default::default()
        },
    )
    .await;
    let t = m
        .create_task("q", TaskMeta::new(json!("work")))
        .await
        .unwrap()
        .into_task();
    let doomed = fast(Worker::new(m.clone()))
        .name("doomed")
        .unwrap()
        .handle("q", |_| std::future::pending::<Result<Value, String>>())
        .unwrap();
    let killed = tokio::spawn(doomed.run(std::future::pending()));
    eventually(
        Duration::from_secs(5),
        "the doomed worker to retain",
        || async { (m.get_task(t.id).await.unwrap().status() == Status::Retained).then_some(()) },
    )
    .await;
    killed.abort();
    let _ = killed.await;
    let (stop, shutdown) = shutdown_switch();
    let maintenance = tokio::spawn(fast_runtime(&m).run(shutdown));
    let (stop_b, shutdown_b) = shutdown_switch();
    let rescuer = fast(Worker::new(m.clone()))
        .name("rescuer")
        .unwrap()
        .handle("q", |p| async move { Ok::<_, String>(p) })
        .unwrap();
    let run_b = tokio::spawn(rescuer.run(shutdown_b));
    let done = eventually(
        Duration::from_secs(10),
        "the rescuer to finish it",
        || async {
            let task = m.get_task(t.id).await.unwrap();
            (task.status() == Status::Released).then_some(task)
        },
    )
    .await;
    assert_eq!(
        (done.worker(), done.retries(), done.result().cloned()),
        (Some("rescuer"), 2, Some(json!("work")))
    );
    let late = m
        .release_task(
            t.id,
            Outcome::done().by(WorkerName::parse("doomed").unwrap()),
        )
        .await;
    assert!(matches!(late, Err(Error::Conflict(_))), "{late:?}");
    let _ = stop.send(());
    let _ = stop_b.send(());
    maintenance.await.unwrap();
    run_b.await.unwrap().unwrap();
}

/// Shutdown stops retaining at once and waits for the handlers in flight, which release.
/// (Without prefetch, the worker holds exactly the running tasks.)
pub async fn shutdown_waits_for_handlers_in_flight(rt: Realtime) {
    let m = rt.manager("graceful");
    queue(&m, "q", QueueMeta::default()).await;
    m.create_tasks("q", vec![TaskMeta::new(json!(1)); 6])
        .await
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let worker = fast(Worker::new(m.clone()))
        .concurrency(4)
        .prefetch(0)
        .handle("q", move |_| {
            let s = s.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok::<_, String>(json!("done"))
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(5), "four handlers running", || async {
        (started.load(Ordering::SeqCst) == 4).then_some(())
    })
    .await;
    let _ = stop.send(());
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.succeeded, report.abandoned), (4, 0));
    assert_eq!(
        started.load(Ordering::SeqCst),
        4,
        "nothing retained after shutdown"
    );
    assert_eq!(
        (
            count(&m, Status::Released).await,
            count(&m, Status::Retained).await,
            count(&m, Status::New).await
        ),
        (4, 0, 2)
    );
}

/// Prefetch: the worker holds up to `concurrency + prefetch` tasks, runs at most
/// `concurrency` handlers at once, and at shutdown runs the tasks it already holds (they are
/// retained: leaving them would cost each an attempt at lease rescue) and retains no more.
pub async fn prefetched_tasks_wait_for_a_slot_and_run_at_shutdown(rt: Realtime) {
    let m = rt.manager("prefetch");
    queue(&m, "q", QueueMeta::default()).await;
    m.create_tasks("q", vec![TaskMeta::new(json!(1)); 10])
        .await
        .unwrap();
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (r, p) = (running.clone(), peak.clone());
    let worker = fast(Worker::new(m.clone()))
        .concurrency(2)
        .prefetch(3)
        .handle("q", move |_| {
            let (r, p) = (r.clone(), p.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(json!("done"))
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(5), "five tasks held", || async {
        (count(&m, Status::Retained).await == 5).then_some(())
    })
    .await;
    let _ = stop.send(());
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.succeeded, report.abandoned), (5, 0));
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "at most `concurrency` handlers"
    );
    assert_eq!(
        (
            count(&m, Status::Released).await,
            count(&m, Status::Retained).await,
            count(&m, Status::New).await
        ),
        (5, 0, 5)
    );
}

/// Handlers still running after the grace period are left retained for lease rescue.
pub async fn shutdown_leaves_overdue_handlers_to_rescue(rt: Realtime) {
    let m = rt.manager("overdue");
    queue(&m, "q", QueueMeta::default()).await;
    let t = m
        .create_task("q", TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let worker = fast(Worker::new(m.clone()))
        .grace_period(Duration::from_millis(100))
        .handle("q", |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, String>(Value::Null)
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(5), "the task retained", || async {
        (m.get_task(t.id).await.unwrap().status() == Status::Retained).then_some(())
    })
    .await;
    let begin = Instant::now();
    let _ = stop.send(());
    let report = run.await.unwrap().unwrap();
    assert!(begin.elapsed() < Duration::from_secs(5));
    assert_eq!(report.abandoned, 1);
    assert_eq!(
        m.get_task(t.id).await.unwrap().status(),
        Status::Retained,
        "left for lease rescue, not lost"
    );
}

/// A handler longer than its lease is kept alive by heartbeats: no rescue, no extra attempt.
///
/// The lease is a second (heartbeats every 500 ms) and the handler runs three of them: a
/// 300 ms lease left only 150 ms of slack per beat, which a loaded CI machine running the
/// whole suite on two cores overran once (the task was rescued and never released in time).
pub async fn heartbeats_keep_long_handlers_alive(rt: Realtime) {
    let m = rt.manager("beats");
    queue(
        &m,
        "q",
        QueueMeta {
            lease: Some(WireDuration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    let t = m
        .create_task("q", TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let worker = fast(Worker::new(m.clone()))
        .handle("q", move |_| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok::<_, String>(json!("slow"))
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let maintenance = tokio::spawn(fast_runtime(&m).run(shutdown));
    let (stop_w, shutdown_w) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown_w));
    let done = eventually(
        Duration::from_secs(20),
        "the slow task released",
        || async {
            let task = m.get_task(t.id).await.unwrap();
            (task.status() == Status::Released).then_some(task)
        },
    )
    .await;
    assert_eq!(
        (done.retries(), calls.load(Ordering::SeqCst)),
        (3, 1),
        "one attempt, never rescued"
    );
    let _ = stop.send(());
    let _ = stop_w.send(());
    maintenance.await.unwrap();
    assert_eq!(run.await.unwrap().unwrap().succeeded, 1);
}

/// When a heartbeat is refused (the task was taken away), the runtime gives the task up
/// without releasing it and drops the handler.
pub async fn worker_gives_up_a_task_taken_from_it(rt: Realtime) {
    let m = rt.manager("taken");
    queue(
        &m,
        "q",
        QueueMeta {
            lease: Some(WireDuration::from_millis(200)),
            ..Default::default()
        },
    )
    .await;
    let t = m
        .create_task("q", TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let worker = fast(Worker::new(m.clone()))
        .handle("q", move |_| {
            let f = f.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                f.store(true, Ordering::SeqCst);
                Ok::<_, String>(Value::Null)
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(5), "retained", || async {
        (m.get_task(t.id).await.unwrap().status() == Status::Retained).then_some(())
    })
    .await;
    // Someone else takes it: the queue (and the task) is deleted under the worker.
    m.delete_queue("q").await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _ = stop.send(());
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.abandoned, report.succeeded), (1, 0));
    assert!(
        !finished.load(Ordering::SeqCst),
        "the handler was dropped, not run to the end"
    );
}

/// Two runtimes on one store: every maturity of a queue ticker becomes exactly one task.
pub async fn queue_ticker_fires_once_per_maturity_across_runtimes(rt: Realtime) {
    let m = rt.manager("qticks");
    queue(&m, "reports", QueueMeta::default()).await;
    let (stop, a) = spawn_runtime(&m, RuntimeConfig::default());
    let (stop2, b) = spawn_runtime(&m, RuntimeConfig::default());
    let meta = TickerMeta {
        ticker: Some("tick".into()),
        interval: Some(WireDuration::from_millis(250)),
        queue: Some(Some("reports".into())),
        payload: Some(json!({"report": "daily"})),
        ..Default::default()
    };
    m.create_ticker(meta).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let _ = stop.send(());
    let _ = stop2.send(());
    a.await.unwrap();
    b.await.unwrap();
    let tasks = m.list_tasks(&TaskFilter::default()).await.unwrap().items;
    assert!(
        (4..=7).contains(&tasks.len()),
        "expected about 1.4 s / 250 ms maturities, got {}",
        tasks.len()
    );
    assert!(
        tasks
            .iter()
            .all(|t| t.payload == json!({"report": "daily"}) && t.queue.as_str() == "reports")
    );
    let gaps: Vec<chrono::TimeDelta> = tasks
        .windows(2)
        .map(|w| w[1].created_at - w[0].created_at)
        .collect();
    assert!(
        gaps.iter()
            .all(|g| *g >= chrono::TimeDelta::milliseconds(250)),
        "two tasks for one maturity: {gaps:?}"
    );
}

/// A ticker created while the scheduler sleeps towards a far-away maturity fires at once.
pub async fn ticker_created_during_a_long_sleep_fires_on_time(rt: Realtime) {
    let m = rt.manager("longsleep");
    queue(&m, "q", QueueMeta::default()).await;
    let far = TickerMeta {
        ticker: Some("far".into()),
        interval: Some(WireDuration::from_hours(1)),
        queue: Some(Some("q".into())),
        ..Default::default()
    };
    m.create_ticker(far).await.unwrap();
    let config = RuntimeConfig {
        max_ticker_sleep: Duration::from_secs(60),
        ..Default::default()
    };
    let (stop, run) = spawn_runtime(&m, config);
    eventually(
        Duration::from_secs(5),
        "the far ticker's first maturity",
        || async { (m.list_tasks(&TaskFilter::default()).await.unwrap().count == 1).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await; // the scheduler is now asleep for an hour
    let begin = Instant::now();
    let soon = TickerMeta {
        ticker: Some("soon".into()),
        payload: Some(json!("soon")),
        queue: Some(Some("q".into())),
        ..Default::default()
    };
    m.create_ticker(soon).await.unwrap();
    eventually(Duration::from_secs(5), "the new ticker's task", || async {
        (m.list_tasks(&TaskFilter::default()).await.unwrap().count == 2).then_some(())
    })
    .await;
    assert!(
        begin.elapsed() < Duration::from_secs(1),
        "fired after {:?}",
        begin.elapsed()
    );
    let _ = stop.send(());
    run.await.unwrap();
}

/// run_ticker_loop hands every matured queue-less ticker to the handler until shutdown.
pub async fn ticker_loop_delivers_matured_tickers(rt: Realtime) {
    let m = rt.manager("loop");
    m.create_ticker(TickerMeta {
        ticker: Some("beat".into()),
        interval: Some(WireDuration::from_millis(200)),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let (stop, shutdown) = shutdown_switch();
    let m2 = m.clone();
    let run = tokio::spawn(async move {
        m2.run_ticker_loop(
            move |t| {
                let s = s.clone();
                async move {
                    s.lock().unwrap().push(t);
                    Ok(())
                }
            },
            shutdown,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        (4..=7).contains(&seen.len()),
        "expected about 1.1 s / 200 ms deliveries, got {}",
        seen.len()
    );
    assert!(seen.iter().all(|t| t.name.as_str() == "beat"));
    let stamps: Vec<_> = seen.iter().map(|t| t.timestamp).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "each maturity delivered once"
    );
}

/// Clean-up (claimed through the system ticker at start) deletes ended tasks past retention in
/// every namespace, beyond 100 queues and 100 tasks per queue, and keeps the rest.
pub async fn clean_up_covers_every_namespace_and_queue(rt: Realtime) {
    let a = rt.manager("clean-a");
    let b = rt.manager("clean-b");
    let short = QueueMeta {
        ttl: Some(WireDuration::from_millis(100)),
        ..Default::default()
    };
    for i in 0..101 {
        queue(&a, &format!("q{i:03}"), short.clone()).await;
        a.create_tasks(&format!("q{i:03}"), vec![TaskMeta::new(json!(i)); 101])
            .await
            .unwrap();
    }
    queue(&b, "q", short).await;
    b.create_tasks("q", vec![TaskMeta::new(json!(0)); 150])
        .await
        .unwrap();
    queue(&b, "keep", QueueMeta::default()).await;
    let kept = b
        .create_task("keep", TaskMeta::new(json!("keep")))
        .await
        .unwrap()
        .into_task();
    tokio::time::sleep(Duration::from_millis(250)).await; // expired at 100 ms, past retention at 200 ms
    let (stop, run) = spawn_runtime(
        &a,
        RuntimeConfig {
            cleanup_batch: 500,
            ..Default::default()
        },
    );
    eventually(
        Duration::from_secs(20),
        "every expired task deleted",
        || async {
            let left = a
                .list_tasks(&TaskFilter {
                    page: Page::new(None, Some(0)),
                    ..Default::default()
                })
                .await
                .unwrap()
                .count
                + b.list_tasks(&TaskFilter {
                    page: Page::new(None, Some(0)),
                    ..Default::default()
                })
                .await
                .unwrap()
                .count;
            (left == 1).then_some(())
        },
    )
    .await;
    let _ = stop.send(());
    run.await.unwrap();
    assert_eq!(b.get_task(kept.id).await.unwrap().status(), Status::New);
    let system = a.system_for_tests();
    let ticker = system.get_ticker("cleanup").await.unwrap();
    assert_eq!(
        (ticker.schedule.interval(), ticker.namespace.as_str()),
        (Some(WireDuration::from_hours(1)), "pgqueue")
    );
    assert!(
        ticker.timestamp.is_some(),
        "clean-up was claimed through the system ticker"
    );
}

/// A long handler cancelled mid-run sees its signal within one heartbeat interval (half the
/// lease), stops, and the task ends `cancelled` with no further attempt; the runtime sends no
/// heartbeat after the cancel.
pub async fn a_cancelled_handler_sees_its_signal_and_stops(rt: Realtime) {
    let m = rt.manager("cancelled");
    // A second, so a beat delayed on a loaded machine still leaves half a lease of slack.
    let lease = Duration::from_secs(1);
    queue(
        &m,
        "q",
        QueueMeta {
            lease: Some(WireDuration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    let t = m
        .create_task("q", TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let (c, seen_by_handler) = (calls.clone(), seen.clone());
    let worker = fast(Worker::new(m.clone()))
        .handle_with_context("q", move |_, ctx| {
            let (c, seen) = (c.clone(), seen_by_handler.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::select! {
                    _ = ctx.cancelled() => {
                        *seen.lock().unwrap() = Some(Instant::now());
                        Err("stopped on request".to_string())
                    }
                    _ = tokio::time::sleep(Duration::from_secs(30)) => Ok(json!("finished")),
                }
            }
        })
        .unwrap();
    let (stop_w, shutdown_w) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown_w));
    eventually(Duration::from_secs(5), "the task retained", || async {
        (m.get_task(t.id).await.unwrap().status() == Status::Retained).then_some(())
    })
    .await;
    let cancelled_at = Instant::now();
    m.cancel_task(t.id).await.unwrap();
    let done = eventually(Duration::from_secs(5), "the task cancelled", || async {
        let task = m.get_task(t.id).await.unwrap();
        (task.status() == Status::Cancelled).then_some(task)
    })
    .await;
    let seen_at = seen.lock().unwrap().expect("the handler saw the cancel");
    assert!(
        seen_at - cancelled_at <= lease / 2 + Duration::from_millis(500),
        "seen {:?} after the cancel",
        seen_at - cancelled_at
    );
    assert_eq!(done.result().cloned(), Some(json!("stopped on request")));
    tokio::time::sleep(lease * 2).await;
    let after = m.get_task(t.id).await.unwrap();
    assert_eq!(
        (after.status(), calls.load(Ordering::SeqCst)),
        (Status::Cancelled, 1),
        "no further attempt"
    );
    let _ = stop_w.send(());
    assert_eq!(run.await.unwrap().unwrap().failed, 1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_runtime_test_is_listed() {
        let listed: &[&str] = crate::runtime_tests!(@names);
        let mut listed: Vec<&str> = listed.to_vec();
        listed.sort();
        let mut defined: Vec<&str> = include_str!("runtime.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split_once('('))
            .filter(|(_, args)| args.starts_with("rt: Realtime"))
            .map(|(name, _)| name)
            .collect();
        defined.sort();
        assert_eq!(listed, defined);
    }
}

/// Counts the retains a queue limit refused.
#[derive(Default)]
struct Refusals(AtomicUsize);

impl pgqueue_app::Observer for Refusals {
    fn retain_limited(
        &self,
        _ns: &pgqueue_domain::Namespace,
        _queue: &pgqueue_domain::QueueName,
        _limit: pgqueue_domain::Limit,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A worker of concurrency 6 on a queue with `max_running = 2` runs two handlers at a time,
/// finishes everything, and while held back sleeps (a few refusals per task, not a spin).
pub async fn a_worker_held_back_by_max_running_runs_at_the_limit_without_spinning(rt: Realtime) {
    let refusals = Arc::new(Refusals::default());
    let m = rt.manager("held").with_observer(refusals.clone());
    queue(
        &m,
        "q",
        QueueMeta {
            max_running: Some(Some(2)),
            ..Default::default()
        },
    )
    .await;
    m.create_tasks("q", vec![TaskMeta::new(json!(1)); 12])
        .await
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n, mx) = (now.clone(), max.clone());
    let worker = fast(Worker::new(m.clone()))
        .concurrency(6)
        .handle("q", move |_| {
            let (n, mx) = (n.clone(), mx.clone());
            async move {
                let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                mx.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(Value::Null)
            }
        })
        .unwrap();
    let (stop, shutdown) = shutdown_switch();
    let run = tokio::spawn(worker.run(shutdown));
    eventually(Duration::from_secs(10), "all released", || async {
        (count(&m, Status::Released).await == 12).then_some(())
    })
    .await;
    let _ = stop.send(());
    assert_eq!(run.await.unwrap().unwrap().succeeded, 12);
    assert_eq!(
        max.load(Ordering::SeqCst),
        2,
        "the limit, not the concurrency"
    );
    let refused = refusals.0.load(Ordering::SeqCst);
    assert!(
        (1..=60).contains(&refused),
        "{refused} refused retains for 12 tasks: a held-back worker must sleep, not spin"
    );
}

/// The events of `m` after `last`, read once without waiting.
async fn events_after(m: &Manager, last: u64) -> pgqueue_ports::EventPage {
    m.next_events(
        Some(last),
        &EventFilter::default(),
        Duration::ZERO,
        std::future::pending(),
    )
    .await
    .unwrap()
}

/// The runtime's maintenance forgets events older than `events_retention` (docs/events.md):
/// a reader from before them is reset to the head, and a younger event is still there for a
/// reader that resumes just before it.
pub async fn the_runtime_forgets_events_past_their_retention(rt: Realtime) {
    let m = rt.manager("prune");
    queue(&m, "q", QueueMeta::default()).await;
    m.create_tasks("q", vec![TaskMeta::new(json!("old")); 3])
        .await
        .unwrap();
    // Old by 4 s against a retention of 3 s; the young event has 3 s before it is old too.
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let young = m
        .create_task("q", TaskMeta::new(json!("young")))
        .await
        .unwrap()
        .into_task();
    let all = events_after(&m, 0).await;
    assert!(!all.reset, "nothing forgotten yet: {all:?}");
    let last = all.events.last().expect("the young task's event").clone();
    assert_eq!(last.task, Some(young.id));
    assert!(all.events.len() >= 4, "the queue's and the tasks' events");

    let (stop, run) = spawn_runtime(
        &m,
        RuntimeConfig {
            maintenance_interval: Duration::from_millis(50),
            events_retention: Duration::from_secs(3),
            ..Default::default()
        },
    );
    eventually(
        Duration::from_secs(10),
        "a reader from the start reset",
        || async {
            let page = events_after(&m, 0).await;
            page.reset.then_some(())
        },
    )
    .await;
    let _ = stop.send(());
    run.await.unwrap();
    let resumed = events_after(&m, last.id - 1).await;
    assert!(!resumed.reset, "the young event is kept: {resumed:?}");
    assert_eq!(
        resumed.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![last.id]
    );
}
