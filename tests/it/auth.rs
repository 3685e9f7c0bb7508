//! Authentication and tenants (`docs/security.md`), end to end on PostgreSQL: the route ×
//! scope matrix over every route of the OpenAPI document, tokens that cannot cross
//! namespaces, revocation within 5 s, CORS, and the `pgqueue token` commands and `--auth`
//! warning on the real binary.

use pgqueue_app::Manager;
use pgqueue_app::auth::{Authenticator, issue};
use pgqueue_client::Client;
use pgqueue_domain::auth::{Grant, Namespaces, Scope};
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_http::{HttpConfig, serve};
use pgqueue_ports::{StorageClock, Store, TokenStore};
use pgqueue_postgres::PgStore;
use pgqueue_tests::binary::{Server, run_cli, stderr};
use pgqueue_tests::db::{TestDatabase, fresh_database};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::sync::oneshot;

/// A server of namespace `alpha` with `--auth` on a fresh database, and its token store.
struct Authed {
    base: String,
    tokens: Arc<PgStore>,
    _stop: oneshot::Sender<()>,
    _db: TestDatabase,
}

async fn authed(cors: &[&str]) -> Authed {
    let db = fresh_database().await;
    let store = Arc::new(db.store(Arc::new(StorageClock)).await);
    let manager = Manager::new(store.clone() as Arc<dyn Store>)
        .with_namespace("alpha")
        .unwrap();
    let config = HttpConfig {
        auth: Some(Authenticator::new(store.clone() as Arc<dyn TokenStore>)),
        cors_origins: cors.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, manager, config, async {
        let _ = stopped.await;
    }));
    Authed {
        base: format!("http://{addr}/api"),
        tokens: store,
        _stop: stop,
        _db: db,
    }
}

impl Authed {
    async fn token(&self, namespaces: &[&str], scopes: &[Scope]) -> String {
        let grant = Grant {
            namespaces: Namespaces::parse(namespaces).unwrap(),
            scopes: scopes.to_vec(),
            expires_at: None,
            revoked_at: None,
        };
        issue(self.tokens.as_ref(), Some("test"), &grant)
            .await
            .unwrap()
            .0
    }

    fn client(&self, token: &str) -> Client {
        Client::new(&self.base).unwrap().token(token)
    }
}

/// The scope the spec gives a route (§14), restated here independently of the server's table.
fn required(method: &str, path: &str) -> Scope {
    match (method, path) {
        ("get", _) => Scope::Read,
        ("post", "/task") => Scope::Enqueue,
        ("put", p) if p.starts_with("/task") => Scope::Consume,
        ("patch", "/task" | "/task/{id}") => Scope::Consume,
        ("post", "/task/{id}/heartbeat") => Scope::Consume,
        _ => Scope::Admin,
    }
}

/// Sends `method path` (parameters filled in) with `token`; only the status matters. Streams
/// answer their headers at once; their bodies are dropped.
async fn status(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    task: i64,
) -> StatusCode {
    let path = path
        .replace("{name}", "q")
        .replace("{id}", &task.to_string());
    let http = pgqueue_client::http_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let query: &[(&str, &str)] = match (method.as_str(), path.as_str()) {
        ("PUT", _) => &[("worker", "w")],
        ("POST", p) if p.ends_with("/heartbeat") => &[("worker", "w")],
        ("DELETE", "/task") => &[("status", "failed")],
        _ => &[],
    };
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
    for (k, v) in query {
        url.query_pairs_mut().append_pair(k, v);
    }
    let mut req = http.request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let body = match (method.as_str(), path.as_str()) {
        ("POST", "/task") => Some(json!({"queue": "q", "payload": 1})),
        ("PATCH", "/task") => Some(json!([])),
        ("POST", "/queue" | "/ticker") => Some(json!({"queue": "other", "ticker": "other"})),
        ("PATCH", _) => Some(json!({})),
        _ => None,
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status()
}

/// Every route of the document: without a token 401, with every other scope 403, with its
/// own scope neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_its_scope() {
    let s = authed(&[]).await;
    let admin = s.token(&["alpha"], &Scope::ALL).await;
    let c = s.client(&admin);
    c.create_queue(&QueueMeta {
        queue: Some("q".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let doc = c.openapi().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "the document lists every route");
    let mut checked = 0;
    // The health checks (their own `servers`: outside the prefix) are open to everyone.
    for (path, ops) in paths.iter().filter(|(_, ops)| ops.get("servers").is_none()) {
        for method in ops.as_object().unwrap().keys() {
            let need = required(method, path);
            // The queue again (a check may have deleted it), and a task per check, so that
            // deleting or retrying one leaves others to act on.
            let _ = c
                .create_queue(&QueueMeta {
                    queue: Some("q".into()),
                    ..Default::default()
                })
                .await;
            let task = c
                .create_task("q", &TaskMeta::new(json!(1)))
                .await
                .unwrap()
                .into_task()
                .id;
            assert_eq!(
                status(&s.base, method, path, None, task).await,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            );
            assert_eq!(
                status(&s.base, method, path, Some("pgq_unknown"), task).await,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with an unknown token"
            );
            let others: Vec<Scope> = Scope::ALL.into_iter().filter(|x| *x != need).collect();
            let lacking = s.token(&["alpha"], &others).await;
            assert_eq!(
                status(&s.base, method, path, Some(&lacking), task).await,
                StatusCode::FORBIDDEN,
                "{method} {path} without scope {need}"
            );
            let own = s.token(&["alpha"], &[need]).await;
            let got = status(&s.base, method, path, Some(&own), task).await;
            assert!(
                got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN,
                "{method} {path} with scope {need}: {got}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} routes checked");
}

/// A token for `alpha` reaches `alpha` through the plain routes and `P/ns/alpha/…`, and no
/// route of `beta`: not the plain ones of a server of `beta`, not `P/ns/beta/…`, not the
/// streams, multi-queue retains or batch creates. `*` reaches both, never `pgqueue`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_never_crosses_into_another_namespace() {
    let s = authed(&[]).await;
    let alpha = s.token(&["alpha"], &Scope::ALL).await;
    let star = s.token(&["*"], &Scope::ALL).await;
    let beta_admin = s.client(&star).namespace("beta").unwrap();
    beta_admin
        .create_queue(&QueueMeta {
            queue: Some("q".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let secret = beta_admin
        .create_task("q", &TaskMeta::new(json!("beta's")))
        .await
        .unwrap()
        .into_task();
    let doc = s.client(&alpha).openapi().await.unwrap();
    for (path, ops) in doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, ops)| ops.get("servers").is_none())
    {
        for method in ops.as_object().unwrap().keys() {
            let got = status(
                &format!("{}/ns/beta", s.base),
                method,
                path,
                Some(&alpha),
                secret.id,
            )
            .await;
            assert_eq!(
                got,
                StatusCode::FORBIDDEN,
                "{method} /ns/beta{path} with alpha's token"
            );
        }
    }
    // Through the client, as a tenant would try it.
    let sneaky = s.client(&alpha).namespace("beta").unwrap();
    for result in [
        sneaky.get_task(secret.id).await.map(|_| ()),
        sneaky.retain_task("w", &["q", "r"]).await.map(|_| ()),
        sneaky
            .create_tasks("q", &[TaskMeta::new(json!(1)), TaskMeta::new(json!(2))])
            .await
            .map(|_| ()),
        sneaky.events(None, &[], &[]).await.map(|_| ()),
        sneaky.next_ticker().await.map(|_| ()),
    ] {
        match result {
            Err(pgqueue_client::ClientError::Api { status, reason, .. }) => {
                assert_eq!(status, 403);
                assert!(reason.contains("namespace beta"), "{reason}");
            }
            other => panic!("expected a 403, got {other:?}"),
        }
    }
    // The same id through alpha's own routes is simply not alpha's task.
    let own = s.client(&alpha);
    assert!(matches!(
        own.get_task(secret.id).await,
        Err(pgqueue_client::ClientError::Api { status: 404, .. })
    ));
    assert_eq!(
        beta_admin.get_task(secret.id).await.unwrap().payload,
        json!("beta's")
    );
    assert_eq!(
        status(
            &format!("{}/ns/pgqueue", s.base),
            "get",
            "/queue",
            Some(&star),
            0
        )
        .await,
        StatusCode::BAD_REQUEST,
        "the system namespace is not a tenant"
    );
}

/// Revoked and expired tokens stop working: a revoked one within 5 s on a server that had
/// just accepted it (cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_stop_within_five_seconds() {
    let s = authed(&[]).await;
    let grant = Grant {
        namespaces: Namespaces::parse(&["alpha"]).unwrap(),
        scopes: vec![Scope::Read],
        expires_at: None,
        revoked_at: None,
    };
    let (token, record) = issue(s.tokens.as_ref(), None, &grant).await.unwrap();
    let c = s.client(&token);
    c.list_queues(None, None).await.unwrap();
    s.tokens.revoke_token(record.id).await.unwrap();
    let revoked = Instant::now();
    loop {
        match c.list_queues(None, None).await {
            Ok(_) => assert!(
                revoked.elapsed() < Duration::from_secs(5),
                "still accepted after 5 s"
            ),
            Err(pgqueue_client::ClientError::Api { status, reason, .. }) => {
                assert_eq!(
                    (status, reason.as_str()),
                    (401, "unauthorized: token revoked")
                );
                break;
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = Grant {
        expires_at: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        ..grant
    };
    let (old, _) = issue(s.tokens.as_ref(), None, &expired).await.unwrap();
    assert!(matches!(
        s.client(&old).list_queues(None, None).await,
        Err(pgqueue_client::ClientError::Api { status: 401, .. })
    ));
    let used = s.tokens.list_tokens().await.unwrap();
    assert!(used[0].last_used_at.is_some(), "the first use was recorded");
    assert_eq!(used[0].hash.len(), 32, "only a hash is stored");
}

/// Preflights from listed origins are answered; others refused; answers carry the origin.
#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let s = authed(&["https://ops.example.com"]).await;
    let http = pgqueue_client::http_builder().build().unwrap();
    let preflight = |origin: &'static str| {
        http.request(Method::OPTIONS, format!("{}/task", s.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let ok = preflight("https://ops.example.com").await.unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    let token = s.token(&["alpha"], &[Scope::Read]).await;
    let answer = http
        .get(format!("{}/queue", s.base))
        .header("Origin", "https://ops.example.com")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
}

/// The real binary: tokens created, listed and revoked with `pgqueue token`, used by the CLI
/// with `--token` and `--namespace`, and the warning of a server without `--auth` on a
/// non-loopback address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_issues_tokens_and_uses_them() {
    let db = fresh_database().await;
    let token_cli = |args: Vec<String>| async move {
        let out = tokio::process::Command::new(pgqueue_tests::binary::pgqueue())
            .args(&args)
            .env_remove("DATABASE_URL")
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let url = db.url().to_string();
    let created = token_cli(
        [
            "token",
            "create",
            &url,
            "--namespace",
            "billing",
            "--scope",
            "admin,read",
            "--name",
            "ops",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pgq_") && token.len() == 68, "{created}");
    assert_eq!(created["scopes"], json!(["admin", "read"]));
    let server = Server::start_with(Some(&url), "127.0.0.1:0", &[], &["--auth"]).await;
    let denied = run_cli(&server.addr, &["queues"]).await;
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("unauthorized"),
        "{}",
        stderr(&denied)
    );
    let as_billing = ["--token", token.as_str(), "--namespace", "billing"];
    let created_queue = run_cli(
        &server.addr,
        &[&as_billing[..], &["create-queue", "invoices"]].concat(),
    )
    .await;
    assert!(created_queue.status.success(), "{}", stderr(&created_queue));
    let listed = run_cli(&server.addr, &[&as_billing[..], &["queues"]].concat()).await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["body"][0]["namespace"], "billing");
    let other = run_cli(
        &server.addr,
        &["--token", &token, "--namespace", "shop", "queues"],
    )
    .await;
    assert!(
        stderr(&other).contains("namespace shop"),
        "{}",
        stderr(&other)
    );
    let list = token_cli(["token", "list", &url].map(String::from).to_vec()).await;
    let id = list["body"][0]["id"].as_i64().unwrap();
    assert!(list["body"][0].get("token").is_none(), "never shown again");
    let revoked = token_cli(
        ["token", "revoke", &url, &id.to_string()]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    drop(server);

    let mut open = tokio::process::Command::new(pgqueue_tests::binary::pgqueue())
        .args(["--http.addr", "0.0.0.0:0", "run", &url])
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(open.stderr.take().unwrap()).lines();
    let warned = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("without --auth on a non-loopback address") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(warned, "a server without --auth on 0.0.0.0 warns");
    drop(open);
    let out = tokio::process::Command::new(pgqueue_tests::binary::pgqueue())
        .args(["--http.addr", "0.0.0.0:0", "run", "--auth"])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "--auth without a database is refused"
    );
    assert!(
        stderr(&out).contains("--auth needs a database URL"),
        "{}",
        stderr(&out)
    );
}
