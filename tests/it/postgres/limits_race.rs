//! Flow control under contention, across processes: `max_running` with four `pgqueue run`
//! servers, two embedded worker runtimes and 64 HTTP retainers (checked by a sampler while
//! it runs and from the rows afterwards); a SIGKILLed worker's slot coming back; and a shared
//! rate over ten seconds of eager retainers.

use pgqueue_app::{Manager, Worker};
use pgqueue_client::{Client, Release};
use pgqueue_domain::{Duration as WireDuration, Namespace, QueueMeta, QueueName, Rate, TaskMeta};
use pgqueue_ports::{StorageClock, Store};
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::fresh_database;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

async fn create_tasks(store: &dyn Store, queue: &str, n: usize) {
    let ns = Namespace::default();
    let q = QueueName::parse(queue).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| TaskMeta::new(json!(i)).validate().unwrap())
            .collect();
        store.create_tasks(&ns, &q, &tasks).await.unwrap();
    }
}

/// An HTTP retainer: retains from `queue`, holds the task for `hold`, releases it; on 204
/// sleeps a little; until `stop`.
async fn retainer(
    client: Client,
    name: String,
    queue: &'static str,
    hold: Duration,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match client.retain_task(&name, &[queue]).await {
            Ok(Some(task)) => {
                tokio::time::sleep(hold).await;
                let release = Release {
                    worker: Some(name.clone()),
                    ..Default::default()
                };
                client
                    .release_task(task.id, release)
                    .await
                    .expect("release");
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("retain failed: {e}"),
        }
    }
}

/// The most intervals `[start, end)` that contain one instant (an end at an instant comes
/// before a start at the same instant: the slot was freed, then taken).
fn max_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for &(start, end) in intervals {
        events.push((start, 1));
        events.push((end, -1));
    }
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_running_holds_across_servers_runtimes_and_retainers() {
    const MAX: i64 = 5;
    const TASKS: usize = 2000;
    let db = fresh_database().await;
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(Server::on(&db).await);
    }
    servers[0]
        .client()
        .create_queue(&QueueMeta {
            queue: Some("fleet".into()),
            max_running: Some(Some(MAX)),
            lease: Some(WireDuration::from_secs(60)),
            ..Default::default()
        })
        .await
        .unwrap();
    let store = Arc::new(db.store(Arc::new(StorageClock)).await);
    create_tasks(store.as_ref(), "fleet", TASKS).await;

    // The sampler: how many are retained, as often as the database answers.
    let stop = Arc::new(AtomicBool::new(false));
    let (most_seen, samples) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (pg, stop, most_seen, samples) = (
            db.client().await,
            stop.clone(),
            most_seen.clone(),
            samples.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let row = pg
                    .query_one(
                        "SELECT count(*) FROM tasks WHERE queue = 'fleet' AND state = 'retained'",
                        &[],
                    )
                    .await
                    .unwrap();
                most_seen.fetch_max(row.get::<_, i64>(0) as u64, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut runtimes = Vec::new();
    for k in 0..2 {
        let manager = Manager::new(Arc::new(db.store(Arc::new(StorageClock)).await));
        let worker = Worker::new(manager)
            .name(&format!("embedded-{k}"))
            .unwrap()
            .concurrency(4)
            .handle("fleet", |_: Value| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, String>(Value::Null)
            })
            .unwrap();
        let stop = stop.clone();
        runtimes.push(tokio::spawn(worker.run(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })));
    }
    let mut retainers = Vec::new();
    for i in 0..64 {
        let client = servers[i % servers.len()].client();
        retainers.push(tokio::spawn(retainer(
            client,
            format!("http-{i}"),
            "fleet",
            Duration::from_millis(20),
            stop.clone(),
        )));
    }

    let pg = db.client().await;
    let started = Instant::now();
    loop {
        let done: i64 = pg
            .query_one(
                "SELECT count(*) FROM tasks WHERE queue = 'fleet' AND state = 'released'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done == TASKS as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {done} of {TASKS} released after 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in retainers {
        r.await.unwrap();
    }
    for r in runtimes {
        r.await.unwrap().unwrap();
    }
    sampler.await.unwrap();

    let most = most_seen.load(Ordering::Relaxed);
    assert!(
        most <= MAX as u64,
        "the sampler saw {most} retained at once"
    );
    assert!(samples.load(Ordering::Relaxed) > 100, "the sampler sampled");
    let rows = pg
        .query(
            "SELECT (extract(epoch FROM started_at) * 1e6)::bigint, \
                    (extract(epoch FROM finished_at) * 1e6)::bigint, worker \
             FROM tasks WHERE queue = 'fleet'",
            &[],
        )
        .await
        .unwrap();
    let intervals: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(intervals.len(), TASKS);
    let overlap = max_overlap(&intervals);
    assert!(overlap <= MAX as usize, "{overlap} runs overlapped");
    assert_eq!(
        overlap, MAX as usize,
        "the limit was reached, so the test means something"
    );
    let embedded = rows
        .iter()
        .filter(|r| r.get::<_, String>(2).starts_with("embedded"))
        .count();
    assert!(
        embedded > 0 && embedded < TASKS,
        "both kinds of worker took part: {embedded}"
    );
    for mut s in servers {
        s.signal(libc::SIGTERM);
        s.child.wait().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_workers_slot_comes_back_after_its_lease() {
    let lease = Duration::from_secs(3);
    let db = fresh_database().await;
    // A server for its background runtime (lease rescue every 2 s) and the HTTP retains.
    let server = Server::on(&db).await;
    let client = server.client();
    client
        .create_queue(&QueueMeta {
            queue: Some("fragile".into()),
            max_running: Some(Some(1)),
            lease: Some(WireDuration::from_nanos(lease.as_nanos() as i64)),
            retry_delay: Some(WireDuration::ZERO),
            ..Default::default()
        })
        .await
        .unwrap();
    let store = db.store(Arc::new(StorageClock)).await;
    create_tasks(&store, "fragile", 2).await;

    let mut holder = tokio::process::Command::new(env!("CARGO_BIN_EXE_slot-holder"))
        .args([db.url(), "fragile"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn slot-holder");
    let mut lines = tokio::io::BufReader::new(holder.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the holder started a task")
        .unwrap()
        .unwrap();
    assert_eq!(line, "holding 0");
    // Held past one lease by its heartbeats: the other task waits for the slot.
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    assert!(
        client
            .retain_task("w", &["fragile"])
            .await
            .unwrap()
            .is_none()
    );

    holder.start_kill().unwrap();
    holder.wait().await.unwrap();
    let killed = Instant::now();
    let got = loop {
        if let Some(t) = client.retain_task("w", &["fragile"]).await.unwrap() {
            break t;
        }
        assert!(
            killed.elapsed() < lease + Duration::from_secs(5),
            "the slot did not come back within lease + 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(killed.elapsed() <= lease + Duration::from_secs(5));
    // Either task may be next: the rescued one (no backoff) or the one that waited.
    assert!(got.payload == json!(0) || got.payload == json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_rate_holds_over_ten_seconds_of_eager_retainers() {
    let run = Duration::from_secs(10);
    let db = fresh_database().await;
    let servers = [Server::on(&db).await, Server::on(&db).await];
    servers[0]
        .client()
        .create_queue(&QueueMeta {
            queue: Some("paced".into()),
            rate: Some(Some(Rate::new(50.0, 10).unwrap())),
            ..Default::default()
        })
        .await
        .unwrap();
    let store = Arc::new(db.store(Arc::new(StorageClock)).await);
    create_tasks(store.as_ref(), "paced", 2000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let manager = Manager::new(store.clone());
    let embedded = Worker::new(manager)
        .concurrency(4)
        .handle("paced", |_: Value| async { Ok::<_, String>(Value::Null) })
        .unwrap();
    let embedded = {
        let stop = stop.clone();
        tokio::spawn(embedded.run(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }))
    };
    let mut retainers = Vec::new();
    for i in 0..16 {
        retainers.push(tokio::spawn(retainer(
            servers[i % 2].client(),
            format!("eager-{i}"),
            "paced",
            Duration::ZERO,
            stop.clone(),
        )));
    }
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for r in retainers {
        r.await.unwrap();
    }
    embedded.await.unwrap().unwrap();

    let pg = db.client().await;
    let rows = pg
        .query(
            "SELECT (extract(epoch FROM started_at) * 1e6)::bigint FROM tasks \
             WHERE queue = 'paced' AND started_at IS NOT NULL ORDER BY started_at",
            &[],
        )
        .await
        .unwrap();
    let starts: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    // Exactness: never more than the burst plus the rate over the span the starts took (on
    // a loaded machine the retainers run past `run`, since they only see the stop between
    // claims, so the span, not `run`, is the window). Liveness: the pace was kept.
    let total = starts.len() as f64;
    let span = match (starts.first(), starts.last()) {
        (Some(first), Some(last)) => (last - first) as f64 / 1e6,
        _ => 0.0,
    };
    let most = 50.0 * span + 10.0;
    assert!(
        total <= most + 1.0,
        "{total} starts in {span:.2}s, at most {most:.0} allowed"
    );
    let least = 0.9 * (50.0 * run.as_secs_f64() + 10.0);
    assert!(
        total >= least,
        "{total} starts in {run:?}, expected at least {least:.0}"
    );
    for (i, &from) in starts.iter().enumerate() {
        let within = starts[i..]
            .iter()
            .take_while(|&&t| t < from + 1_000_000)
            .count();
        assert!(within <= 60, "{within} starts in the second from {from}");
    }
}
