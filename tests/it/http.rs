//! End to end over HTTP: the real server (`pgqueue_http::serve` on a port-0 listener) driven
//! by the real client (`pgqueue_client::Client`).
//!
//! Storage: PostgreSQL, one fresh database per test (see [`app`]).

use futures::StreamExt;
use pgqueue_client::{ClientError, Release, ReleaseItem, SseEvent, TaskQuery};
use pgqueue_domain::{Duration, QueueMeta, Status, TaskMeta, TickerMeta};
use pgqueue_tests::served::start;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration as StdDuration, Instant};

fn queue(name: &str) -> QueueMeta {
    QueueMeta {
        queue: Some(name.into()),
        ..Default::default()
    }
}

#[track_caller]
fn assert_api_error<T: std::fmt::Debug>(r: Result<T, ClientError>, status: u16, needle: &str) {
    match r {
        Err(ClientError::Api {
            status: s, reason, ..
        }) => {
            assert_eq!(s, status, "{reason}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected a {status} API error, got {other:?}"),
    }
}

#[tokio::test]
async fn queues_round_trip_through_the_client() {
    let s = start().await;
    let c = &s.client;
    let q = c
        .create_queue(&QueueMeta {
            queue: Some("Emails".into()),
            retries: Some(5),
            ttl: Some(Duration::from_secs(90)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.name.as_str(), q.retries), ("emails", 5));
    assert_eq!(q.namespace.as_str(), "e2e");
    assert_eq!(c.get_queue("emails").await.unwrap(), q);
    assert_api_error(
        c.create_queue(&queue("emails")).await,
        409,
        "already exists",
    );
    assert_api_error(c.get_queue("ghost").await, 404, "not found");
    assert_api_error(c.get_queue("bad name!").await, 400, "invalid queue name");
    let up = c
        .update_queue(
            "emails",
            &QueueMeta {
                queue: Some("mails".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(up.name.as_str(), "mails");
    c.create_queue(&queue("b")).await.unwrap();
    let list = c.list_queues(None, None).await.unwrap();
    assert_eq!(list.count, 2);
    assert_eq!(list.items[0].name.as_str(), "b");
    let page = c.list_queues(Some(1), Some(1)).await.unwrap();
    assert_eq!((page.count, page.items.len()), (2, 1));
    assert_eq!(page.items[0].name.as_str(), "mails");
    assert_eq!(
        c.delete_queue("mails").await.unwrap().name.as_str(),
        "mails"
    );
    assert_api_error(c.delete_queue("mails").await, 404, "not found");
    assert_eq!(c.list_namespaces().await.unwrap().items, vec!["e2e"]);
}

#[tokio::test]
async fn a_task_fails_backs_off_and_is_released() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&QueueMeta {
        queue: Some("jobs".into()),
        retries: Some(2),
        retry_delay: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = c
        .create_task("jobs", &TaskMeta::new(json!({"n":1})))
        .await
        .unwrap()
        .into_task();
    assert_eq!((t.status, t.retries), (Status::New, 2));

    let r = c.retain_task("w1", &["jobs"]).await.unwrap().unwrap();
    assert_eq!((r.id, r.status), (t.id, Status::Retained));
    let failed = c
        .release_task(t.id, Release::failure(json!({"error":"boom"})).by("w1"))
        .await
        .unwrap();
    assert_eq!((failed.status, failed.retries), (Status::Retry, 1));
    assert_eq!(failed.result, Some(json!({"error":"boom"})));
    let due = failed.delayed_at.expect("a backoff");
    // First failure: 1 × retry_delay from the release.
    let now = chrono::Utc::now();
    assert!(
        due > now && due <= now + chrono::TimeDelta::milliseconds(200),
        "{due}"
    );

    assert_eq!(c.retain_task("w1", &["jobs"]).await.unwrap(), None);
    tokio::time::sleep(StdDuration::from_millis(250)).await;
    let again = c.retain_task_from("w2", "jobs").await.unwrap().unwrap();
    assert_eq!(again.id, t.id);
    let done = c
        .release_task(t.id, Release::success(Some(json!("ok"))))
        .await
        .unwrap();
    assert_eq!(done.status, Status::Released);
    assert_eq!(done.result, Some(json!("ok")));
    assert_eq!(c.get_task(t.id).await.unwrap(), done);
    assert_api_error(
        c.release_task(t.id, Release::success(None)).await,
        409,
        "not retained",
    );
    assert_api_error(c.get_task(987_654).await, 404, "not found");
}

#[tokio::test]
async fn any_and_multi_queue_retain_fencing_and_heartbeats() {
    let s = start().await;
    let c = &s.client;
    for q in ["a", "b", "c"] {
        c.create_queue(&queue(q)).await.unwrap();
    }
    let ta = c
        .create_task("a", &TaskMeta::new(json!("a")))
        .await
        .unwrap()
        .into_task();
    let tb = c
        .create_task("b", &TaskMeta::new(json!("b")))
        .await
        .unwrap()
        .into_task();
    let tc = c
        .create_task("c", &TaskMeta::new(json!("c")))
        .await
        .unwrap()
        .into_task();

    let got = c.retain_task("w", &["c", "b"]).await.unwrap().unwrap();
    assert_eq!(got.id, tb.id);
    assert_eq!(c.retain_task("w", &["ghost"]).await.unwrap(), None);
    let any = c.retain_task("x", &[]).await.unwrap().unwrap();
    assert_eq!(any.id, ta.id);
    assert_api_error(c.retain_task("", &[]).await, 400, "missing worker");
    assert_api_error(c.retain_task_from("w", "ghost").await, 404, "not found");

    // Fencing: w does not hold task a.
    assert_api_error(
        c.release_task(ta.id, Release::success(None).by("w")).await,
        409,
        "not retained by worker",
    );
    assert_api_error(c.heartbeat(ta.id, "w").await, 409, "not retained by worker");
    let before = any.lease_expires_at.unwrap();
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    let beat = c.heartbeat(ta.id, "x").await.unwrap();
    assert!(beat.lease_expires_at.unwrap() > before);
    assert_eq!(
        c.release_task(ta.id, Release::success(None).by("x"))
            .await
            .unwrap()
            .status,
        Status::Released
    );
    let last = c.retain_task("w", &[]).await.unwrap().unwrap();
    assert_eq!(last.id, tc.id);
}

#[tokio::test]
async fn batches_are_created_all_or_nothing() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&queue("q")).await.unwrap();
    let metas: Vec<TaskMeta> = (0..50).map(|i| TaskMeta::new(json!(i))).collect();
    let created = c.create_tasks("q", &metas).await.unwrap();
    assert_eq!(created.len(), 50);
    assert_eq!(created[49].payload, json!(49));
    let mut bad = metas.clone();
    bad.push(TaskMeta::default());
    assert_api_error(c.create_tasks("q", &bad).await, 400, "missing payload");
    assert_api_error(c.create_tasks("q", &[]).await, 400, "at least one task");
    let too_many = vec![TaskMeta::new(json!(1)); 10_001];
    assert_api_error(c.create_tasks("q", &too_many).await, 400, "at most 10000");
    assert_api_error(c.create_tasks("ghost", &metas).await, 404, "not found");
    let all = c.list_tasks(&TaskQuery::default()).await.unwrap();
    assert_eq!(all.count, 50);
    assert_eq!(all.items.len(), 50);
    let filtered = c
        .list_tasks(&TaskQuery {
            queue: Some("q".into()),
            status: Some(Status::New),
            offset: Some(45),
            limit: Some(10),
        })
        .await
        .unwrap();
    assert_eq!((filtered.count, filtered.items.len()), (50, 5));
}

/// Reads events until `deadline`, or until the stream ends.
async fn collect_until(
    stream: &mut pgqueue_client::EventStream,
    deadline: Instant,
) -> (Vec<SseEvent>, bool) {
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => return (events, false),
            Ok(None) => return (events, true),
            Ok(Some(Ok(e))) => events.push(e),
            Ok(Some(Err(e))) => panic!("stream error: {e}"),
        }
    }
}

#[tokio::test]
async fn the_stream_delivers_a_300ms_ticker_repeatedly_with_pings() {
    let s = start().await;
    let c = &s.client;
    let mut stream = c.next_ticker().await.unwrap();
    let started = Instant::now();
    c.create_ticker(&TickerMeta {
        ticker: Some("fast".into()),
        interval: Some(Duration::from_millis(300)),
        payload: Some(json!({"k":"v"})),
        ..Default::default()
    })
    .await
    .unwrap();
    let (events, ended) =
        collect_until(&mut stream, started + StdDuration::from_millis(1500)).await;
    assert!(!ended);
    assert_eq!(events[0].event, "ping", "{events:?}");
    assert_eq!(events[0].data, "");
    let tickers: Vec<_> = events
        .iter()
        .filter_map(SseEvent::ticker)
        .map(Result::unwrap)
        .collect();
    assert!(tickers.len() >= 3, "{events:?}");
    assert!(tickers.iter().all(|t| t.name.as_str() == "fast"));
    assert_eq!(tickers[0].payload, json!({"k":"v"}));
    // Each delivery is a distinct maturity, at least one interval apart.
    for pair in tickers.windows(2) {
        let gap = pair[1].timestamp.unwrap() - pair[0].timestamp.unwrap();
        assert!(gap >= chrono::TimeDelta::milliseconds(300), "{gap}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_stops_claiming() {
    let s = start().await;
    let c = &s.client;
    let mut stream = c.next_ticker().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.event, "ping");
    drop(stream);
    tokio::time::sleep(StdDuration::from_millis(1000)).await;
    c.create_ticker(&TickerMeta {
        ticker: Some("orphan".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(StdDuration::from_millis(1200)).await;
    let t = c.get_ticker("orphan").await.unwrap();
    assert_eq!(t.timestamp, None, "claimed by a stream whose client left");
}

#[tokio::test]
async fn metrics_match_the_real_task_counts() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&QueueMeta {
        queue: Some("m".into()),
        retries: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_queue(&queue("empty")).await.unwrap();
    let metas: Vec<TaskMeta> = (0..6).map(|i| TaskMeta::new(json!(i))).collect();
    c.create_tasks("m", &metas).await.unwrap();
    let a = c.retain_task("w", &["m"]).await.unwrap().unwrap();
    c.release_task(a.id, Release::success(None)).await.unwrap();
    let b = c.retain_task("w", &["m"]).await.unwrap().unwrap();
    c.release_task(b.id, Release::failure(json!("x")))
        .await
        .unwrap();
    c.retain_task("w", &["m"]).await.unwrap().unwrap();

    let text = c.metrics().await.unwrap();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("queue_tasks{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        samples.insert(labels.to_string(), value.parse::<f64>().unwrap());
    }
    assert_eq!(
        samples.len(),
        2 * Status::ALL.len(),
        "2 queues × every status:\n{text}"
    );
    for q in ["m", "empty"] {
        for status in Status::ALL {
            let real = c
                .list_tasks(&TaskQuery {
                    queue: Some(q.into()),
                    status: Some(status),
                    limit: Some(0),
                    ..Default::default()
                })
                .await
                .unwrap()
                .count;
            let key = format!("queue_tasks{{namespace=\"e2e\",queue=\"{q}\",status=\"{status}\"}}");
            assert_eq!(samples[&key], real as f64, "{key}");
        }
    }
    assert_eq!(
        samples["queue_tasks{namespace=\"e2e\",queue=\"m\",status=\"new\"}"],
        3.0
    );
    assert!(text.contains(r#"pgqueue_tasks_created_total{namespace="e2e",queue="m"} 6"#));
    assert!(text.contains(r#"pgqueue_tasks_retained_total{namespace="e2e",queue="m"} 3"#));
    assert!(text.contains(r#"pgqueue_tasks_released_total{namespace="e2e",queue="m"} 1"#));
    assert!(text.contains(r#"pgqueue_tasks_failed_total{namespace="e2e",queue="m"} 1"#));
}

#[tokio::test]
async fn eight_clients_drain_two_thousand_tasks_each_released_once() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&queue("drain")).await.unwrap();
    let metas: Vec<TaskMeta> = (0..2000).map(|i| TaskMeta::new(json!(i))).collect();
    let created: HashSet<i64> = c
        .create_tasks("drain", &metas)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(created.len(), 2000);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let c = c.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let mut released = Vec::new();
                while let Some(t) = c.retain_task(&worker, &["drain"]).await.unwrap() {
                    let r = c
                        .release_task(t.id, Release::success(None).by(worker.as_str()))
                        .await
                        .unwrap();
                    assert_eq!(r.status, Status::Released);
                    released.push(t.id);
                }
                released
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    assert_eq!(all.len(), 2000, "every task released once");
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique, created);
    let released = c
        .list_tasks(&TaskQuery {
            status: Some(Status::Released),
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(released.count, 2000);
}

#[tokio::test]
async fn shutdown_ends_an_open_stream_promptly() {
    let mut s = start().await;
    let mut stream = s.client.next_ticker().await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().event, "ping");
    let began = Instant::now();
    s.stop.take().unwrap().send(()).unwrap();
    let (_, ended) = collect_until(&mut stream, began + StdDuration::from_secs(2)).await;
    assert!(ended, "the stream did not end within 2 s of shutdown");
    tokio::time::timeout(StdDuration::from_secs(2), &mut s.handle)
        .await
        .expect("the server stops within 2 s")
        .unwrap();
    assert!(began.elapsed() < StdDuration::from_secs(2));
    assert!(matches!(
        s.client.list_queues(None, None).await,
        Err(ClientError::Transport(_))
    ));
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let s = start().await;
    let doc = s.client.openapi().await.unwrap();
    let routes = [
        ("get", "/namespace"),
        ("get", "/queue"),
        ("post", "/queue"),
        ("get", "/queue/{name}"),
        ("patch", "/queue/{name}"),
        ("delete", "/queue/{name}"),
        ("get", "/task"),
        ("post", "/task"),
        ("put", "/task"),
        ("get", "/task/{id}"),
        ("put", "/task/{id}"),
        ("patch", "/task/{id}"),
        ("post", "/task/{id}/heartbeat"),
        ("get", "/ticker"),
        ("post", "/ticker"),
        ("get", "/ticker/next"),
        ("get", "/ticker/{name}"),
        ("patch", "/ticker/{name}"),
        ("delete", "/ticker/{name}"),
        ("get", "/events"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    for (method, path) in routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    // `PUT /task/{queue}` is described under the one template `/task/{id}`; the operator
    // routes add seven paths, the event stream one, the health checks (outside the prefix,
    // under a `servers` of their own) two.
    assert_eq!(doc["paths"].as_object().unwrap().len(), 22);
    assert_eq!(doc["paths"]["/healthz"]["servers"][0]["url"], "/");
}

#[tokio::test]
async fn tickers_round_trip_and_stream_from_the_list_route() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&queue("reports")).await.unwrap();
    let t = c
        .create_ticker(&TickerMeta {
            ticker: Some("nightly".into()),
            queue: Some(Some("reports".into())),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (
            t.name.as_str(),
            t.schedule.interval(),
            t.queue.as_ref().map(|q| q.as_str())
        ),
        ("nightly", Some(Duration::from_mins(1)), Some("reports"))
    );
    c.create_ticker(&TickerMeta {
        ticker: Some("beat".into()),
        interval: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await
    .unwrap();
    let list = c.list_tickers(None, None).await.unwrap();
    assert_eq!(
        (
            list.count,
            list.items
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
        ),
        (2, vec!["beat", "nightly"])
    );
    assert_eq!(
        c.list_tickers(Some(1), Some(1)).await.unwrap().items[0]
            .name
            .as_str(),
        "nightly"
    );
    let up = c
        .update_ticker(
            "nightly",
            &TickerMeta {
                ticker: Some("daily".into()),
                interval: Some(Duration::from_hours(24)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (up.name.as_str(), up.schedule.interval()),
        ("daily", Some(Duration::from_hours(24)))
    );
    assert_api_error(
        c.update_ticker(
            "nightly",
            &TickerMeta {
                interval: Some(Duration::from_secs(1)),
                ..Default::default()
            },
        )
        .await,
        404,
        "not found",
    );
    assert_api_error(
        c.update_ticker("daily", &TickerMeta::default()).await,
        400,
        "no patch values",
    );
    assert_eq!(
        c.delete_ticker("daily").await.unwrap().name.as_str(),
        "daily"
    );
    assert_api_error(c.delete_ticker("daily").await, 404, "not found");

    // GET /ticker with Accept: text/event-stream is the SSE stream too.
    let url = c.base_url();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET {}/ticker HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n",
        url.path().trim_end_matches('/')
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, request.as_bytes())
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while seen.matches("event: ticker").count() < 2 && Instant::now() < deadline {
        let n = tokio::time::timeout(
            StdDuration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut conn, &mut buf),
        )
        .await
        .unwrap()
        .unwrap();
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );
    assert!(
        seen.matches("event: ticker").count() >= 2,
        "two maturities of a 200 ms ticker:\n{seen}"
    );
    assert!(seen.contains(r#""ticker":"beat""#), "{seen}");
}

#[tokio::test]
async fn unique_keys_answer_200_and_priorities_order_retains() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&queue("p")).await.unwrap();
    let first = c
        .create_task("p", &TaskMeta::new(json!(1)).unique_key("invoice-7"))
        .await
        .unwrap();
    let again = c
        .create_task("p", &TaskMeta::new(json!(2)).unique_key("invoice-7"))
        .await
        .unwrap();
    assert!(first.is_new() && !again.is_new());
    assert_eq!(again.task().id, first.task().id);
    assert_eq!(again.task().unique_key.as_deref(), Some("invoice-7"));
    let urgent = c
        .create_task("p", &TaskMeta::new(json!("urgent")).priority(50))
        .await
        .unwrap()
        .into_task();
    assert_eq!(urgent.priority, 50);
    let got = c.retain_task("w", &["p"]).await.unwrap().unwrap();
    assert_eq!(got.id, urgent.id, "higher priority first");
    let batch = c
        .create_tasks(
            "p",
            &[
                TaskMeta::new(json!("dup")).unique_key("invoice-7"),
                TaskMeta::new(json!("x")).unique_key("x"),
                TaskMeta::new(json!("x2")).unique_key("x"),
            ],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = batch.iter().map(|t| t.id).collect();
    assert_eq!(ids[0], first.task().id);
    assert_eq!(ids[1], ids[2]);
    assert_api_error(
        c.create_task("p", &TaskMeta::new(json!(1)).priority(1000))
            .await,
        400,
        "invalid priority",
    );
}

/// Batch HTTP workers on PostgreSQL: a long-poll woken by a create (through LISTEN/NOTIFY),
/// retains of many tasks and batch releases, each item answered on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_workers_long_poll_retain_many_and_release_many() {
    let s = start().await;
    let c = &s.client;
    c.create_queue(&QueueMeta {
        queue: Some("b".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let (woken, _) = tokio::join!(
        c.retain_tasks("w", &["b"], 10, StdDuration::from_secs(20)),
        async {
            tokio::time::sleep(StdDuration::from_millis(300)).await;
            c.create_task("b", &TaskMeta::new(json!("first")))
                .await
                .unwrap()
        }
    );
    let woken = woken.unwrap();
    assert_eq!(woken.len(), 1);
    assert!(
        started.elapsed() < StdDuration::from_secs(10),
        "woken by the create"
    );
    c.create_tasks(
        "b",
        &(0..5).map(|i| TaskMeta::new(json!(i))).collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let many = c
        .retain_tasks("w", &["b"], 3, StdDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(many.len(), 3);
    let mut items: Vec<ReleaseItem> = many
        .iter()
        .chain(&woken)
        .map(|t| ReleaseItem {
            id: t.id,
            release: Release::success(Some(json!({"done": t.id}))).by(String::from("w")),
        })
        .collect();
    items.push(ReleaseItem {
        id: 424_242,
        release: Release::default(),
    });
    let answers = c.release_tasks(&items).await.unwrap();
    let codes: Vec<u16> = answers.iter().map(|a| a.code).collect();
    assert_eq!(codes, vec![200, 200, 200, 200, 404]);
    assert_eq!(answers[0].task.as_ref().unwrap().status, Status::Released);
    assert_eq!(answers[4].id, 424_242);
    let rest = c
        .retain_tasks("w", &[], 100, StdDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
}
