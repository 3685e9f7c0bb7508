//! The event stream end to end (`docs/events.md`): two servers on one store, a client that
//! disconnects while 1,000 tasks change through both, and comes back with `Last-Event-ID`:
//! it must get each missed event exactly once, in order. On PostgreSQL the two servers have
//! pools of their own, so their transactions commit in any order; on memory they share one
//! store.

use futures::StreamExt;
use pgqueue_app::Manager;
use pgqueue_client::{Client, EventStream, Release};
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_http::{HttpConfig, serve};
use pgqueue_memory::MemoryStore;
use pgqueue_ports::{StorageClock, Store};
use pgqueue_tests::db::fresh_database;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Serves namespace `events` of `store` on a port-0 listener; the sender stops it.
async fn serve_store(store: Arc<dyn Store>) -> (Client, oneshot::Sender<()>) {
    let manager = Manager::new(store).with_namespace("events").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, manager, HttpConfig::default(), async {
        let _ = stopped.await;
    }));
    (Client::new(&format!("http://{addr}/api")).unwrap(), stop)
}

/// The next task or queue event (pings skipped), with a deadline.
async fn next_event(stream: &mut EventStream, deadline: Instant) -> (u64, String, i64) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, stream.next())
            .await
            .expect("an event before the deadline")
            .expect("the stream stays open")
            .expect("a well-formed event");
        if let Some(data) = item.event_data() {
            let data = data.expect("event JSON");
            assert_ne!(item.event, "reset", "resumed within the window");
            return (
                item.event_id().expect("an id"),
                data.event,
                data.id.unwrap_or(0),
            );
        }
        assert_ne!(item.event, "reset", "resumed within the window");
    }
}

const TASKS: usize = 1_000;
const WORKERS: usize = 8;

async fn resume_gets_every_missed_event_once_in_order(a: Client, b: Client) {
    for name in ["q", "other"] {
        a.create_queue(&QueueMeta {
            queue: Some(name.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // Generous: the full suite runs this beside 270 other tests on two cores.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut first = a.events(None, &[], &[]).await.unwrap();
    // The stream starts from now: wait for its opening ping before making the first event.
    let ping = first.next().await.unwrap().unwrap();
    assert_eq!(ping.event, "ping");
    let seen = a
        .create_task("other", &TaskMeta::new(json!("first")))
        .await
        .unwrap();
    let (last_seen, kind, id) = next_event(&mut first, deadline).await;
    assert_eq!((kind.as_str(), id), ("created", seen.into_task().id));
    drop(first);
    // A second reader stays connected throughout: while both servers' transactions commit
    // in any order, it must never skip an id nor see one twice.
    let mut live = b.events(Some(last_seen), &[], &[]).await.unwrap();
    let live_reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < TASKS * 3 {
            ids.push(next_event(&mut live, deadline).await.0);
        }
        ids
    });

    // 1,000 tasks created, retained and released by 8 clients, half through each server.
    let mut jobs = Vec::new();
    for k in 0..WORKERS {
        let c = if k % 2 == 0 { a.clone() } else { b.clone() };
        jobs.push(tokio::spawn(async move {
            let worker = format!("w{k}");
            for i in 0..TASKS / WORKERS {
                let created = c
                    .create_task("q", &TaskMeta::new(json!({"k": k, "i": i})))
                    .await
                    .unwrap()
                    .into_task();
                // Some task is always waiting for this worker, but not always in the
                // snapshot of its claim: a worker that started later can take the oldest
                // task while the one it created is not yet visible here. Ask again.
                let held = loop {
                    match c.retain_task(&worker, &["q"]).await.unwrap() {
                        Some(task) => break task,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                };
                c.release_task(held.id, Release::success(None))
                    .await
                    .unwrap();
                let _ = created;
            }
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }

    let mut resumed = b.events(Some(last_seen), &[], &[]).await.unwrap();
    let mut by_task: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut ids = Vec::new();
    while ids.len() < TASKS * 3 {
        let (event_id, kind, task) = next_event(&mut resumed, deadline).await;
        ids.push(event_id);
        by_task.entry(task).or_default().push(kind);
    }
    let expected: Vec<u64> = (last_seen + 1..=last_seen + (TASKS * 3) as u64).collect();
    assert_eq!(
        ids, expected,
        "each missed event once, in id order, none skipped"
    );
    assert_eq!(
        live_reader.await.unwrap(),
        expected,
        "the live reader saw the same"
    );
    assert_eq!(by_task.len(), TASKS);
    for (task, kinds) in &by_task {
        assert_eq!(kinds, &["created", "retained", "released"], "task {task}");
    }
    // Nothing more was pending: a new event is the very next id.
    let late = a
        .create_task("q", &TaskMeta::new(json!("late")))
        .await
        .unwrap();
    let (id, kind, task) = next_event(&mut resumed, deadline).await;
    assert_eq!(
        (id, kind.as_str(), task),
        (
            last_seen + (TASKS * 3) as u64 + 1,
            "created",
            late.into_task().id
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_resume_through_two_servers_gets_each_missed_event_once_in_order() {
    let db = fresh_database().await;
    let one: Arc<dyn Store> = Arc::new(db.store(Arc::new(StorageClock)).await);
    let two: Arc<dyn Store> = Arc::new(db.store(Arc::new(StorageClock)).await);
    let (a, _stop_a) = serve_store(one).await;
    let (b, _stop_b) = serve_store(two).await;
    resume_gets_every_missed_event_once_in_order(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_resume_through_two_servers_gets_each_missed_event_once_in_order() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let (a, _stop_a) = serve_store(store.clone()).await;
    let (b, _stop_b) = serve_store(store).await;
    resume_gets_every_missed_event_once_in_order(a, b).await;
}

/// Bad filters and ids are 400 envelopes before any stream starts.
#[tokio::test]
async fn bad_event_requests_are_refused_with_an_envelope() {
    let (c, _stop) = serve_store(Arc::new(MemoryStore::default())).await;
    for (queues, kinds) in [(vec!["Bad Name!"], vec![]), (vec![], vec!["exploded"])] {
        match c.events(None, &queues, &kinds).await {
            Err(pgqueue_client::ClientError::Api { status, .. }) => assert_eq!(status, 400),
            Err(e) => panic!("expected a 400, got {e:?}"),
            Ok(_) => panic!("expected a 400, got a stream"),
        }
    }
    let raw = pgqueue_client::http_builder()
        .build()
        .unwrap()
        .get(format!(
            "{}/events",
            c.base_url().as_str().trim_end_matches('/')
        ))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("Last-Event-ID"),
        "{body}"
    );
    // Not even text (schemathesis sent `\xc2\x84`): refused too, never a stream from now.
    let bytes = reqwest::header::HeaderValue::from_bytes(b"\xc2\x84").unwrap();
    let raw = pgqueue_client::http_builder()
        .build()
        .unwrap()
        .get(format!(
            "{}/events",
            c.base_url().as_str().trim_end_matches('/')
        ))
        .header("Last-Event-ID", bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
}
