//! What deployments rely on, on the real binary (`docs/deploy.md`): health checks, explicit
//! migrations (`pgqueue migrate`, `--status`, `run --no-migrate`, refusing a newer schema),
//! and JSON logs.

use pgqueue_tests::binary::{Server, pgqueue, stderr};
use pgqueue_tests::db::fresh_database;
use std::process::Output;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn pgqueue_cmd(args: &[&str]) -> Output {
    tokio::process::Command::new(pgqueue())
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap()
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_on_their_own_and_run_can_refuse_to_apply_them() {
    let db = fresh_database().await;
    // A schema nobody migrated yet.
    let url = db.url().to_string();
    let client = sql(&url).await;
    client.batch_execute("CREATE SCHEMA fresh").await.unwrap();
    let status = pgqueue_cmd(&["migrate", &url, "--status", "--pg.schema", "fresh"]).await;
    assert!(status.status.success(), "{}", stderr(&status));
    let before = lines(&status);
    assert!(before.len() >= 10, "{before:?}");
    assert!(
        before.iter().all(|l| l.starts_with("pending ")),
        "{before:?}"
    );
    assert!(before[0].ends_with("_create_pgqueue"), "{before:?}");

    let refused = pgqueue_cmd(&[
        "--http.addr",
        "127.0.0.1:0",
        "run",
        &url,
        "--pg.schema",
        "fresh",
        "--no-migrate",
    ])
    .await;
    assert!(!refused.status.success(), "pending migrations: refused");
    assert!(stderr(&refused).contains("pending"), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("pgqueue migrate"),
        "{}",
        stderr(&refused)
    );

    let applied = pgqueue_cmd(&["migrate", &url, "--pg.schema", "fresh"]).await;
    assert!(applied.status.success(), "{}", stderr(&applied));
    let after = lines(&applied);
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|l| l.starts_with("applied ")), "{after:?}");

    let server = Server::start_with(
        Some(&url),
        "127.0.0.1:0",
        &[],
        &["--pg.schema", "fresh", "--no-migrate"],
    )
    .await;
    let http = pgqueue_client::http_builder().build().unwrap();
    let health = http
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let ready = http
        .get(format!("http://{}/readyz", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    drop(server);

    // A migration this binary does not know: the schema is newer; refuse to start.
    client
        .batch_execute(
            "INSERT INTO fresh.__diesel_schema_migrations (version) VALUES ('99991231000000')",
        )
        .await
        .unwrap();
    let newer = pgqueue_cmd(&[
        "--http.addr",
        "127.0.0.1:0",
        "run",
        &url,
        "--pg.schema",
        "fresh",
    ])
    .await;
    assert!(!newer.status.success());
    assert!(
        stderr(&newer).contains("newer than this binary"),
        "{}",
        stderr(&newer)
    );
    let newer_status = pgqueue_cmd(&["migrate", &url, "--status", "--pg.schema", "fresh"]).await;
    assert!(!newer_status.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_storage_and_logs_can_be_json() {
    let db = fresh_database().await;
    let mut child = tokio::process::Command::new(pgqueue())
        .args([
            "--http.addr",
            "127.0.0.1:0",
            "run",
            db.url(),
            "--log-format",
            "json",
            "--auth",
        ])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            if v["fields"]["message"] == "pgqueue serving" {
                return v;
            }
        }
        panic!("no serving line");
    })
    .await
    .unwrap();
    let addr = serving["fields"]["addr"].as_str().unwrap().to_string();
    assert_eq!(serving["level"], "INFO");
    // Open with --auth: orchestrators carry no token.
    let http = pgqueue_client::http_builder().build().unwrap();
    let ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let api = http
        .get(format!("http://{addr}/api/queue"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401, "the API itself still needs a token");
    // The schema is no longer the binary's: not ready, with the envelope saying why; the
    // process still serves.
    let client = sql(db.url()).await;
    client
        .batch_execute("DROP TABLE __diesel_schema_migrations")
        .await
        .unwrap();
    let not_ready = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().starts_with("not ready"),
        "{body}"
    );
    let alive = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200);
}

/// Tables for people when asked (`--output table`; the default on a terminal), the API's JSON
/// otherwise (the default when piped, as here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_tables_with_human_durations_when_asked() {
    let server = Server::start(None).await;
    let created = server
        .cli(&["create-queue", "emails", "--ttl", "90m", "--lease", "30s"])
        .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let table = server.cli(&["--output", "table", "queues"]).await;
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        text.contains("1h 30m") && text.contains("30s") && text.contains("emails"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("1 of 1"), "{text}");
    let piped = server.cli(&["queues"]).await;
    let json: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(
        json["body"][0]["ttl"], 5_400_000_000_000u64,
        "scripts keep the JSON"
    );
}
