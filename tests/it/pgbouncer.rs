//! The real binary behind a real PgBouncer in transaction mode (docs/deploy.md,
//! "Behind PgBouncer"): two `pgqueue run --pg.prepared=false` servers whose pools go through
//! the pooler, once with `--pg.listen-url` on a direct connection (wake-ups by NOTIFY) and
//! once without (the LISTEN check fails, the servers poll). Each leg runs CRUD, retain and
//! release from 8 clients spread over both servers, a queue ticker, a long-polling wake-up
//! and the event stream, and checks the database afterwards. The pooler has 4 server
//! connections per database, so every transaction of both servers shares them: a statement
//! left prepared, a LISTEN or a lock left on a session fails another client's request.
//! A last test runs two servers with different `--pg.schema` through the same pooler: a
//! schema set for the session instead of the transaction would send one server's rows into
//! the other's tables.

use futures::StreamExt;
use pgqueue_client::{ReleaseItem, TaskQuery};
use pgqueue_domain::{QueueMeta, Status, TaskMeta, TickerMeta};
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::fresh_database;
use pgqueue_tests::pgbouncer;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const TASKS: usize = 800;
const WORKERS: usize = 8;

async fn leg(direct_listen: bool) {
    let db = fresh_database().await;
    let pooled = pgbouncer::url(&db);
    let mut run = vec!["--pg.prepared=false", "--pg.pool-size", "6"];
    if direct_listen {
        run.extend(["--pg.listen-url", db.url()]);
    }
    // The first server also migrates the fresh database, through the pooler when there is
    // no direct URL (migrations run in one transaction).
    let a = Server::start_with(Some(&pooled), "127.0.0.1:0", &[], &run).await;
    let b = Server::start_with(Some(&pooled), "127.0.0.1:0", &[], &run).await;
    let (ca, cb) = (a.client(), b.client());

    // Health, and how wake-ups arrive.
    let http = pgqueue_client::http_builder().build().unwrap();
    for s in [&a, &b] {
        let ready = http
            .get(format!("http://{}/readyz", s.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
    let mode = if direct_listen { 1 } else { 0 };
    for c in [&ca, &cb] {
        let metrics = c.metrics().await.unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == format!("pgqueue_notify_mode {mode}")),
            "pgqueue_notify_mode {mode} expected:\n{metrics}"
        );
    }

    // CRUD across both servers.
    for name in ["work", "ticked", "wake", "sse", "gone"] {
        ca.create_queue(&QueueMeta {
            queue: Some(name.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let updated = cb
        .update_queue(
            "work",
            &QueueMeta {
                retries: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.retries, 7);
    assert_eq!(ca.get_queue("work").await.unwrap().retries, 7);
    cb.delete_queue("gone").await.unwrap();
    assert_eq!(ca.list_queues(None, None).await.unwrap().count, 4);

    // Retain and release from 8 clients over both servers: every task exactly once.
    for chunk in (0..TASKS).collect::<Vec<_>>().chunks(200) {
        let metas: Vec<TaskMeta> = chunk.iter().map(|i| TaskMeta::new(json!(i))).collect();
        ca.create_tasks("work", &metas).await.unwrap();
    }
    let workers = (0..WORKERS).map(|w| {
        let c = if w % 2 == 0 { a.client() } else { b.client() };
        tokio::spawn(async move {
            let name = format!("w{w}");
            let mut got = Vec::new();
            loop {
                let tasks = c
                    .retain_tasks(&name, &["work"], 10, Duration::ZERO)
                    .await
                    .unwrap();
                if tasks.is_empty() {
                    return got;
                }
                let items: Vec<ReleaseItem> = tasks
                    .iter()
                    .map(|t| ReleaseItem {
                        id: t.id,
                        release: pgqueue_client::Release::success(None).by(name.clone()),
                    })
                    .collect();
                let answers = c.release_tasks(&items).await.unwrap();
                assert!(answers.iter().all(|r| r.code == 200), "{answers:?}");
                got.extend(tasks.iter().map(|t| t.id));
            }
        })
    });
    let mut seen = HashSet::new();
    for w in workers {
        for id in w.await.unwrap() {
            assert!(seen.insert(id), "task {id} retained twice");
        }
    }
    assert_eq!(seen.len(), TASKS);
    let released = ca
        .list_tasks(&TaskQuery {
            queue: Some("work".into()),
            status: Some(Status::Released),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        released.count, TASKS as u64,
        "released tasks in the database"
    );

    // A queue ticker fires through the pooler.
    cb.create_ticker(&TickerMeta {
        ticker: Some("tick".into()),
        interval: Some(pgqueue_domain::Duration::from_millis(300)),
        queue: Some(Some("ticked".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ticked = ca
            .list_tasks(&TaskQuery {
                queue: Some("ticked".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if ticked.count >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ticker fired {} times",
            ticked.count
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A long-polling worker on one server is woken by a create on the other.
    let sleeper = {
        let c = a.client();
        tokio::spawn(async move {
            let tasks = c
                .retain_tasks("sleeper", &["wake"], 1, Duration::from_secs(20))
                .await
                .unwrap();
            (tasks, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created = cb
        .create_task("wake", &TaskMeta::new(json!("up")))
        .await
        .unwrap()
        .task()
        .clone();
    let created_at = Instant::now();
    let (woken, at) = sleeper.await.unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].id, created.id);
    assert!(
        at.duration_since(created_at) < Duration::from_secs(5),
        "woken {:?} after the create (the wait was 20s)",
        at.duration_since(created_at)
    );

    // The event stream of one server sees a create on the other.
    let mut stream = ca.events(None, &["sse"], &["created"]).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.event, "ping");
    let task = cb
        .create_task("sse", &TaskMeta::new(json!("seen")))
        .await
        .unwrap()
        .task()
        .clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let item = tokio::time::timeout(left, stream.next())
            .await
            .expect("a created event within 10s")
            .expect("the stream stays open")
            .unwrap();
        if let Some(data) = item.event_data() {
            let data = data.unwrap();
            assert_eq!(data.event, "created");
            assert_eq!(data.id, Some(task.id));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_with_a_direct_listen_connection() {
    leg(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_alone_polling_for_wakeups() {
    leg(false).await;
}

/// Two servers with different schemas share the pooler's four server connections: each
/// transaction sets its own `search_path`, so every task lands in its server's schema and
/// each server lists only its own, however the pooler interleaves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_pgbouncer_each_schema_keeps_its_own_rows() {
    let db = fresh_database().await;
    let pooled = pgbouncer::url(&db);
    let run = |schema: &'static str| {
        vec![
            "--pg.prepared=false",
            "--pg.pool-size",
            "4",
            "--pg.schema",
            schema,
        ]
    };
    let a = Server::start_with(Some(&pooled), "127.0.0.1:0", &[], &run("alpha")).await;
    let b = Server::start_with(Some(&pooled), "127.0.0.1:0", &[], &run("beta")).await;
    let clients = [(a.client(), "alpha", 300usize), (b.client(), "beta", 200)];
    for (c, _, _) in &clients {
        c.create_queue(&QueueMeta {
            queue: Some("q".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    // Interleaved single creates from both servers, so their transactions share connections.
    let creators = clients.iter().map(|(c, schema, n)| {
        let (c, schema, n) = (c.clone(), *schema, *n);
        tokio::spawn(async move {
            for i in 0..n {
                c.create_task("q", &TaskMeta::new(json!({ "schema": schema, "i": i })))
                    .await
                    .unwrap();
            }
        })
    });
    for done in futures::future::join_all(creators).await {
        done.unwrap();
    }
    let sql = db.client().await;
    for (c, schema, n) in &clients {
        let listed = c
            .list_tasks(&TaskQuery {
                limit: Some(0),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.count, *n as u64, "{schema} lists its own tasks");
        let row = sql
            .query_one(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE payload->>'schema' = '{schema}') \
                     FROM \"{schema}\".tasks"
                ),
                &[],
            )
            .await
            .unwrap();
        let (all, own): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!((all, own), (*n as i64, *n as i64), "{schema}'s table");
    }
    let public = sql
        .query_one("SELECT to_regclass('public.tasks') IS NULL", &[])
        .await
        .unwrap();
    assert!(
        public.get::<_, bool>(0),
        "nothing was created outside the schemas"
    );
}
