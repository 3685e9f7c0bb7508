//! The `pgqueue` binary end to end, as a user runs it: `pgqueue run` on a real database and a
//! free port, the client commands as subprocesses, their stdout JSON and exit codes.

use pgqueue_client::Release;
use pgqueue_tests::binary::{Server, pgqueue, run_cli, stderr};
use pgqueue_tests::db::fresh_database;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_queue_and_task_command_round_trips() {
    let db = fresh_database().await;
    let s = Server::on(&db).await;
    let q = s
        .json(&[
            "create-queue",
            "Emails",
            "--ttl",
            "2h",
            "--retries",
            "2",
            "--retry-delay",
            "1s",
            "--lease",
            "90s",
        ])
        .await;
    assert_eq!(
        q,
        json!({"queue":"emails","ttl":7_200_000_000_000i64,"retries":2,"retry_delay":1_000_000_000,"lease":90_000_000_000i64,"namespace":"default"})
    );
    s.json(&["create-queue", "sms"]).await;
    assert_eq!(s.json(&["queue", "emails"]).await, q);
    let updated = s.json(&["update-queue", "emails", "--retries", "5"]).await;
    assert_eq!(
        (updated["retries"].clone(), updated["ttl"].clone()),
        (json!(5), json!(7_200_000_000_000i64))
    );
    let queues = s.json(&["queues", "--limit", "1"]).await;
    assert_eq!(
        (queues["count"].clone(), queues["body"][0]["queue"].clone()),
        (json!(2), json!("emails"))
    );

    let t = s
        .json(&["create-task", "emails", "--payload", r#"{"to":"ada"}"#])
        .await;
    assert_eq!(
        (
            t["status"].clone(),
            t["payload"].clone(),
            t["retries"].clone()
        ),
        (json!("new"), json!({"to":"ada"}), json!(5))
    );
    let later = s
        .json(&[
            "create-task",
            "sms",
            "--payload",
            "42",
            "--delayed-at",
            "2099-01-01T00:00:00Z",
        ])
        .await;
    assert_eq!(later["delayed_at"], json!("2099-01-01T00:00:00Z"));
    let sms = s.json(&["create-task", "sms", "--payload", "null"]).await;
    let listed = s
        .json(&["tasks", "--status=new", "--queue", "emails"])
        .await;
    assert_eq!(
        (listed["count"].clone(), listed["body"][0]["id"].clone()),
        (json!(1), t["id"].clone())
    );
    assert_eq!(s.json(&["task", &t["id"].to_string()]).await["id"], t["id"]);

    // retain-task uses every queue given; a name that matches no queue simply matches nothing.
    let got = s
        .json(&["retain-task", "ghost", "emails", "--worker", "w1"])
        .await;
    assert_eq!(
        (
            got["id"].clone(),
            got["status"].clone(),
            got["worker"].clone()
        ),
        (t["id"].clone(), json!("retained"), json!("w1"))
    );
    let got2 = s
        .json(&["retain-task", "sms", "emails", "--worker", "w1"])
        .await;
    assert_eq!(got2["id"], sms["id"]);
    assert_eq!(
        s.json(&["retain-task", "--worker", "w1"]).await,
        Value::Null,
        "nothing else is due"
    );

    let done = s
        .json(&[
            "complete-task",
            &t["id"].to_string(),
            "--result",
            r#"{"sent":true}"#,
            "--worker",
            "w1",
        ])
        .await;
    assert_eq!(
        (done["status"].clone(), done["result"].clone()),
        (json!("released"), json!({"sent":true}))
    );
    let failed = s
        .json(&[
            "complete-task",
            &sms["id"].to_string(),
            "--error",
            r#"{"reason":"down"}"#,
        ])
        .await;
    assert_eq!(
        (
            failed["status"].clone(),
            failed["result"].clone(),
            failed["retries"].clone()
        ),
        (json!("retry"), json!({"reason":"down"}), json!(2))
    );
    let by_status = s.json(&["tasks", "--status", "retry"]).await;
    assert_eq!(by_status["count"], json!(1));

    let deleted = s.json(&["delete-queue", "sms"]).await;
    assert_eq!(deleted["queue"], json!("sms"));
    assert_eq!(
        s.json(&["tasks"]).await["count"],
        json!(1),
        "deleting a queue deleted its tasks"
    );
    let ns = s.json(&["namespaces"]).await;
    assert!(ns["body"].as_array().unwrap().contains(&json!("default")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_commands_and_next_ticker_stream() {
    let db = fresh_database().await;
    let s = Server::on(&db).await;
    s.json(&["create-queue", "reports"]).await;
    let t = s
        .json(&[
            "create-ticker",
            "nightly",
            "--interval",
            "24h",
            "--queue",
            "reports",
            "--payload",
            r#"{"r":1}"#,
        ])
        .await;
    assert_eq!(
        (
            t["ticker"].clone(),
            t["interval"].clone(),
            t["queue"].clone()
        ),
        (
            json!("nightly"),
            json!(86_400_000_000_000i64),
            json!("reports")
        )
    );
    assert_eq!(
        s.json(&["ticker", "nightly"]).await["payload"],
        json!({"r":1})
    );
    let u = s
        .json(&["update-ticker", "nightly", "--interval", "12h"])
        .await;
    assert_eq!(u["interval"], json!(43_200_000_000_000i64));
    s.json(&["create-ticker", "beat", "--interval", "300ms"])
        .await;
    assert_eq!(s.json(&["tickers"]).await["count"], json!(2));
    assert_eq!(
        s.json(&["delete-ticker", "nightly"]).await["ticker"],
        json!("nightly")
    );

    let stream = Command::new(pgqueue())
        .args(["--http.addr", &s.addr, "next-ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("next-ticker");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let pid = stream.id().expect("running") as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = tokio::time::timeout(Duration::from_secs(5), stream.wait_with_output())
        .await
        .expect("exits on Ctrl-C")
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tickers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("[ticker] "))
        .collect();
    assert!(
        tickers.len() >= 3,
        "expected ≥ 3 maturities of a 300 ms ticker in 1.6 s:\n{stdout}"
    );
    let first: Value = serde_json::from_str(tickers[0].trim_start_matches("[ticker] ")).unwrap();
    assert_eq!(first["ticker"], json!("beat"));
    assert!(
        stdout.lines().any(|l| l.starts_with("[ping]")),
        "a ping soon after connecting:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_on_stderr_with_exit_code_1() {
    let db = fresh_database().await;
    let s = Server::on(&db).await;
    let out = s.cli(&["queue", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim(), "Error: queue \"nope\" not found");
    assert!(out.stdout.is_empty());
    let out = s.cli(&["create-queue", "bad name!"]).await;
    assert_eq!(
        (out.status.code(), stderr(&out).trim()),
        (Some(1), "Error: invalid queue name: \"bad name!\"")
    );
    let out = s.cli(&["create-task", "q", "--payload", "{nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .starts_with("Error: invalid value '{nope' for '--payload <PAYLOAD>': invalid JSON"),
        "{}",
        stderr(&out)
    );
    // Local validation happens before any request: these fail the same with no server at all.
    for args in [
        &["create-queue", "q", "--ttl", "soon"][..],
        &[
            "create-task",
            "q",
            "--payload",
            "1",
            "--delayed-at",
            "tomorrow",
        ][..],
        &["retain-task", "q"][..],
    ] {
        let out = run_cli("127.0.0.1:1", args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with("Error: "),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("cannot reach"),
            "{args:?} must fail before any request"
        );
    }
    let out = run_cli("127.0.0.1:1", &["queues"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("Error: cannot reach the pgqueue server"),
        "{}",
        stderr(&out)
    );
    let out = run_cli("127.0.0.1:1", &["--version"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("pgqueue "));
    let out = run_cli("127.0.0.1:1", &["create-queue", "--help"]).await;
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains("Example: pgqueue create-queue")
    );
    let out = run_cli("127.0.0.1:1", &["completions", "bash"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("_pgqueue()"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_fast_and_readably() {
    let bin = pgqueue(); // built (if needed) before the clock starts
    let begin = Instant::now();
    let out = Command::new(bin)
        .args([
            "--http.addr",
            "127.0.0.1:0",
            "run",
            "postgres://postgres@127.0.0.1:1/test",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        begin.elapsed() < Duration::from_secs(15),
        "took {:?}",
        begin.elapsed()
    );
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("Error: ") && last.contains("127.0.0.1") && last.contains('1'),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_url_it_runs_in_memory_and_says_so_first() {
    let mut s = Server::start(None).await;
    assert_eq!(s.json(&["create-queue", "q"]).await["queue"], json!("q"));
    s.signal(libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(5), s.child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success());
    let mut err = String::new();
    if let Some(mut pipe) = s.child.stderr.take() {
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut err)
            .await
            .unwrap();
    }
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("in-memory store"), "first log line: {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_within_2s_with_an_open_sse_stream() {
    let db = fresh_database().await;
    let mut s = Server::on(&db).await;
    let mut events = s.client().next_ticker().await.expect("open stream");
    let first = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut events),
    )
    .await
    .expect("ping");
    assert_eq!(first.unwrap().unwrap().event, "ping");
    let begin = Instant::now();
    s.signal(libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(2), s.child.wait())
        .await
        .expect("stopped within 2 s")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(begin.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_never_hand_out_a_task_twice() {
    let db = fresh_database().await;
    let a = Server::on(&db).await;
    let b = Server::on(&db).await;
    a.json(&["create-queue", "shared"]).await;
    let ids: HashSet<i64> = a
        .client()
        .create_tasks(
            "shared",
            &vec![pgqueue_domain::TaskMeta::new(json!(1)); 400],
        )
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    let mut workers = Vec::new();
    for (i, client) in [a.client(), a.client(), b.client(), b.client()]
        .into_iter()
        .enumerate()
    {
        workers.push(tokio::spawn(async move {
            let name = format!("w{i}");
            let mut mine = Vec::new();
            while let Some(t) = client.retain_task(&name, &["shared"]).await.unwrap() {
                client
                    .release_task(t.id, Release::success(None).by(name.clone()))
                    .await
                    .unwrap();
                mine.push(t.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut per_server = [0usize; 2];
    for (i, w) in workers.into_iter().enumerate() {
        for id in w.await.unwrap() {
            assert!(seen.insert(id), "task {id} handed out twice");
            per_server[i / 2] += 1;
        }
    }
    assert_eq!(seen, ids);
    assert!(
        per_server[0] > 0 && per_server[1] > 0,
        "both servers served: {per_server:?}"
    );
    let released = b
        .json(&["tasks", "--status", "released", "--limit", "0"])
        .await;
    assert_eq!(released["count"], json!(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_prints_a_result_line_per_figure() {
    let db = fresh_database().await;
    let out = Command::new(pgqueue())
        .args([
            "bench",
            db.url(),
            "--tasks",
            "300",
            "--concurrency",
            "4",
            "--http-clients",
            "2",
            "--latency-tasks",
            "40",
            "--rate",
            "200",
            "--finished-rows",
            "2000",
            "--backlog-rows",
            "2000",
            "--queues",
            "20",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for metric in [
        "W1a_enqueue_single_jobs_s",
        "W1b_enqueue_batch_jobs_s",
        "W1a_unique_enqueue_single_jobs_s",
        "W1b_unique_enqueue_batch_jobs_s",
        "W2_drain_c4_jobs_s",
        "W2_priority_drain_c4_jobs_s",
        "W2_limited_drain_c32_jobs_s",
        "W2_backlog_drain_c4_jobs_s",
        "W2_queues_drain_c32_jobs_s",
        "W2_finished_empty_c4_jobs_s",
        "W2_finished_drain_c4_jobs_s",
        "W2_http_drain_c2_jobs_s",
        "W2_http_batch_drain_c2_jobs_s",
        "W2_no_prefetch_drain_c32_jobs_s",
        "W2_http_server_idle_rss_mb",
        "W2_http_server_peak_rss_mb",
        "W3_p50_ms",
        "W3_p99_ms",
        "W2_c4_peak_rss_mb",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("RESULT\tpgqueue\t{metric}\t")))
            .unwrap_or_else(|| panic!("no RESULT line for {metric}:\n{stdout}"));
        let value: f64 = line.split('\t').nth(3).unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
}

/// `--ceiling` measures the database with pgbench first and prints each pgqueue figure as a
/// ratio of the matching pgbench figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ceiling_prints_pgbench_figures_and_ratios() {
    let db = fresh_database().await;
    let out = Command::new(pgqueue())
        .args([
            "bench",
            db.url(),
            "--ceiling",
            "--ceiling-seconds",
            "1",
            "--concurrency",
            "2",
            "--workload",
            "W1a",
            "--tasks",
            "50",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for shape in [
        "insert_c1",
        "insert_c2",
        "claim_finish_1stmt_c2",
        "claim_finish_2tx_c2",
        "claim_finish_100_c2",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("RESULT\tpgbench\t{shape}\t")))
            .unwrap_or_else(|| panic!("no pgbench figure {shape}:\n{stdout}"));
        let tps: f64 = line.split('\t').nth(3).unwrap().parse().unwrap();
        assert!(tps > 0.0, "{line}");
    }
    let w1a = stdout
        .lines()
        .find(|l| l.starts_with("RESULT\tpgqueue\tW1a_enqueue_single_jobs_s\t"))
        .unwrap_or_else(|| panic!("no W1a figure:\n{stdout}"));
    assert!(w1a.contains("x of pgbench insert_c1"), "{w1a}");
    // Only the chosen workload ran.
    assert!(!stdout.contains("W2_drain"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_flags_choose_namespace_schema_credentials_and_prefix() {
    let db = fresh_database().await;
    let run = [
        "--namespace",
        "Tenant",
        "--pg.schema",
        "jobs",
        "--pg.user",
        "postgres",
        "--pg.password",
        "unused",
    ];
    let s = Server::start_with(
        Some(db.url()),
        "127.0.0.1:0",
        &["--http.prefix", "/v1/"],
        &run,
    )
    .await;
    // The default prefix is not served; the chosen one serves namespace "tenant".
    let out = s.cli(&["queues"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "the default prefix /api is not served"
    );
    let q = s.json(&["--http.prefix", "v1", "create-queue", "q"]).await;
    assert_eq!(q["namespace"], json!("tenant"));
    // The tables live in the chosen schema.
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*) FROM jobs.queues WHERE namespace = 'tenant'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_ticker_reconnects_after_the_server_restarts() {
    let db = fresh_database().await;
    // A fixed free port, so the restarted server is found where the first one was.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut first = Server::start_with(Some(db.url()), &addr, &[], &[]).await;
    first
        .json(&["create-ticker", "beat", "--interval", "200ms"])
        .await;
    let stream = Command::new(pgqueue())
        .args(["--http.addr", &addr, "next-ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.signal(libc::SIGTERM);
    first.child.wait().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _second = Server::start_with(Some(db.url()), &addr, &[], &[]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pid = stream.id().unwrap() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = tokio::time::timeout(Duration::from_secs(5), stream.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    assert!(
        err.contains("reconnecting"),
        "it noticed the server leaving: {err}"
    );
    let pings = stdout.lines().filter(|l| l.starts_with("[ping]")).count();
    assert!(pings >= 2, "a ping from each connection:\n{stdout}");
    let stamps: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[ticker] "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["timestamp"].to_string())
        .collect();
    assert!(
        stamps.len() >= 4,
        "tickers before and after the restart:\n{stdout}"
    );
    assert_eq!(
        stamps.len(),
        stamps.iter().collect::<HashSet<_>>().len(),
        "no maturity delivered twice"
    );
}

/// The operator commands, and a pause that survives a restart of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_and_a_pause_that_survives_a_restart() {
    let db = fresh_database().await;
    let mut s = Server::on(&db).await;
    s.json(&["create-queue", "ops", "--retries", "1"]).await;
    let t = s.json(&["create-task", "ops", "--payload", "1"]).await;
    let id = t["id"].as_i64().unwrap().to_string();
    let paused = s.json(&["pause-queue", "ops"]).await;
    assert!(paused["paused_at"].is_string(), "{paused}");
    s.signal(libc::SIGTERM);
    s.child.wait().await.unwrap();

    let s = Server::on(&db).await;
    assert!(
        s.json(&["queue", "ops"]).await["paused_at"].is_string(),
        "paused after a restart"
    );
    assert_eq!(
        s.json(&["retain-task", "ops", "--worker", "w"]).await,
        Value::Null
    );
    s.json(&["resume-queue", "ops"]).await;
    assert_eq!(
        s.json(&["retain-task", "ops", "--worker", "w"]).await["id"].as_i64(),
        t["id"].as_i64()
    );
    let asked = s.json(&["cancel-task", &id]).await;
    assert!(asked["cancel_requested_at"].is_string(), "{asked}");
    let failed = s
        .json(&["complete-task", &id, "--error", "\"stopped\""])
        .await;
    assert_eq!(failed["status"], "cancelled");
    assert_eq!(s.json(&["retry-task", &id]).await["status"], "new");
    let waiting = s.json(&["cancel-task", &id]).await;
    assert_eq!(waiting["status"], "cancelled");
    assert_eq!(
        s.json(&["retry-tasks", "ops", "--status", "cancelled"])
            .await,
        json!({"count": 1})
    );
    s.json(&["cancel-task", &id]).await;
    assert_eq!(
        s.json(&["purge-tasks", "--status", "cancelled", "--queue", "ops"])
            .await,
        json!({"count": 1})
    );
    let again = s.json(&["create-task", "ops", "--payload", "2"]).await;
    let again_id = again["id"].as_i64().unwrap().to_string();
    assert_eq!(s.json(&["delete-task", &again_id]).await["id"], again["id"]);
    let out = s.cli(&["delete-task", &again_id]).await;
    assert!(
        !out.status.success() && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );
    let out = s.cli(&["purge-tasks", "--status", "retained"]).await;
    assert!(
        stderr(&out).contains("retained tasks are not purged"),
        "{}",
        stderr(&out)
    );
    s.json(&["create-ticker", "beat", "--interval", "1h"]).await;
    assert!(s.json(&["pause-ticker", "beat"]).await["paused_at"].is_string());
    assert!(
        s.json(&["resume-ticker", "beat"])
            .await
            .get("paused_at")
            .is_none()
    );
}

/// Cron tickers from the command line, and a server down across an `@hourly` maturity:
/// the maturity is stored, so the server that comes back fires it exactly once and moves on
/// to the next hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_commands_and_an_hourly_ticker_fires_once_after_downtime() {
    // The test takes seconds; started just before the top of an hour, the real maturity
    // would arrive during it. Wait for the hour to turn instead.
    let to_the_hour = 3600 - chrono::Utc::now().timestamp() % 3600;
    if to_the_hour < 40 {
        tokio::time::sleep(Duration::from_secs(to_the_hour as u64 + 1)).await;
    }
    let db = fresh_database().await;
    let mut s = Server::on(&db).await;
    s.json(&["create-queue", "hourly"]).await;
    let t = s
        .json(&[
            "create-ticker",
            "h",
            "--cron",
            "@hourly",
            "--timezone",
            "Europe/Berlin",
            "--queue",
            "hourly",
        ])
        .await;
    assert_eq!(
        (&t["cron"], &t["timezone"], t.get("interval")),
        (&json!("@hourly"), &json!("Europe/Berlin"), None),
        "{t}"
    );
    let next: chrono::DateTime<chrono::Utc> = t["next_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next.timestamp() % 3600, 0, "the top of an hour: {next}");
    let schedule = s.json(&["ticker-schedule", "h", "-n", "3"]).await;
    assert_eq!(schedule["count"], 3);
    assert_eq!(schedule["body"][0], t["next_at"]);
    let out = s
        .cli(&["create-ticker", "bad", "--cron", "61 * * * *"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid cron: \"61 * * * *\""),
        "{}",
        stderr(&out)
    );
    let out = s
        .cli(&[
            "create-ticker",
            "bad",
            "--cron",
            "@daily",
            "--timezone",
            "Mars/Base",
        ])
        .await;
    assert!(
        stderr(&out).contains("invalid timezone"),
        "{}",
        stderr(&out)
    );

    // Down across the maturity: the hour it waited for passes while no server runs.
    s.signal(libc::SIGTERM);
    s.child.wait().await.unwrap();
    let pg = db.client().await;
    pg.execute(
        "UPDATE tickers SET next_at = next_at - interval '1 hour' WHERE name = 'h'",
        &[],
    )
    .await
    .unwrap();

    let s = Server::on(&db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.json(&["tasks", "--queue", "hourly"]).await["count"] == 0 {
        assert!(Instant::now() < deadline, "the missed maturity never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a second fire every chance to happen, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.json(&["tasks", "--queue", "hourly"]).await["count"], 1);
    let after = s.json(&["ticker", "h"]).await;
    assert_eq!(
        after["next_at"], t["next_at"],
        "on to the next hour: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_limits_from_the_command_line() {
    let s = Server::start(None).await;
    let q = s
        .json(&[
            "create-queue",
            "api",
            "--max-running",
            "10",
            "--rate",
            "30/m",
            "--burst",
            "3",
        ])
        .await;
    assert_eq!(q["max_running"], 10);
    assert_eq!(q["rate"], json!({"per_second": 0.5, "burst": 3}));
    let q = s.json(&["update-queue", "api", "--rate", "none"]).await;
    assert_eq!((q.get("rate"), &q["max_running"]), (None, &json!(10)));
    let q = s
        .json(&[
            "update-queue",
            "api",
            "--max-running",
            "none",
            "--rate",
            "20",
        ])
        .await;
    assert_eq!(q.get("max_running"), None);
    assert_eq!(q["rate"], json!({"per_second": 20.0, "burst": 1}));
    for (args, needle) in [
        (
            &["update-queue", "api", "--max-running", "0"][..],
            "invalid max_running: must be between 1 and 1000000, got 0",
        ),
        (
            &["update-queue", "api", "--rate", "5/x"],
            "expected N/s, N/m, N/h or none",
        ),
        (
            &["update-queue", "api", "--rate", "0/s"],
            "per_second must be more than 0",
        ),
        (&["update-queue", "api", "--burst", "4"], "--rate"),
    ] {
        let out = s.cli(args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}
