//! Hostile and clumsy input end to end, against the real server on PostgreSQL: every bad
//! input a clear 4xx with the envelope, one client's bad input never failing another's
//! request, payloads kept digit for digit, and a shutdown bounded whatever clients do.
//! Each test names the finding of the adversarial review it pins.

use pgqueue_client::{ClientError, Release};
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_http::HttpConfig;
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::fresh_database;
use pgqueue_tests::served::{Served, start, start_with};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    /// The body as the error envelope, asserting its shape and that `code` is the status.
    fn envelope(&self) -> Value {
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not a JSON envelope ({e}): {self:?}"));
        assert_eq!(v["object"], "error", "{v}");
        assert_eq!(v["code"], self.status, "{v}");
        v
    }
}

/// Sends `request` as it is (it must ask for `Connection: close`) and reads the answer.
async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn request(method: &str, target: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn send(s: &Served, method: &str, target: &str, body: &str) -> Raw {
    raw(s.addr, &request(method, target, body)).await
}

async fn queue(s: &Served, name: &str) {
    s.client
        .create_queue(&QueueMeta {
            queue: Some(name.into()),
            ..Default::default()
        })
        .await
        .expect("create queue");
}

#[track_caller]
fn assert_refused(r: &Raw, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{r:?}");
    let reason = r.envelope()["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
}

/// Finding 1: a NUL anywhere PostgreSQL cannot store it is a 400 naming the field, never a
/// 503; finding 7: worker names with control characters are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_control_characters_are_400s_naming_the_field() {
    let s = start().await;
    queue(&s, "q").await;
    let nul = "payload contains \\u0000, which cannot be stored";
    for body in [
        r#"{"queue":"q","payload":{"a":"x\u0000y"}}"#,
        r#"{"queue":"q","payload":{"a\u0000":1}}"#,
        r#"[{"queue":"q","payload":1},{"queue":"q","payload":["\u0000"]}]"#,
    ] {
        assert_refused(&send(&s, "POST", "/api/task", body).await, 400, nul);
    }
    let ticker = r#"{"ticker":"t","payload":{"k":"\u0000"}}"#;
    assert_refused(&send(&s, "POST", "/api/ticker", ticker).await, 400, nul);

    let task = s
        .client
        .create_task("q", &TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    s.client.retain_task("w", &["q"]).await.unwrap().unwrap();
    let path = format!("/api/task/{}", task.id);
    let result = "result contains \\u0000, which cannot be stored";
    for body in [
        r#"{"result":"a\u0000"}"#,
        r#"{"result":{"\u0000":1},"fail":true}"#,
    ] {
        assert_refused(&send(&s, "PATCH", &path, body).await, 400, result);
    }
    for target in [
        "/api/task?worker=a%00b".to_string(),
        "/api/task/q?worker=w%0D%0AX-Injected:%20yes".to_string(),
        format!("/api/task/{}/heartbeat?worker=a%00b", task.id),
    ] {
        let method = if target.contains("heartbeat") {
            "POST"
        } else {
            "PUT"
        };
        assert_refused(
            &send(&s, method, &target, "").await,
            400,
            "invalid worker name",
        );
    }
    let fenced = r#"{"worker":"w\r\nX-Injected: yes"}"#;
    assert_refused(
        &send(&s, "PATCH", &path, fenced).await,
        400,
        "invalid worker name",
    );
    // Nothing above reached the database: the task is still retained by `w`.
    let t = s.client.get_task(task.id).await.unwrap();
    assert_eq!(t.worker.as_deref(), Some("w"));
}

/// Finding 2: two clients sending poison (NUL worker names, NUL results) beside eight good
/// workers draining 3,000 tasks through group commit: the good workers get no 5xx, and
/// every task is released exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_pill_clients_never_fail_good_ones() {
    let s = start().await;
    queue(&s, "work").await;
    let metas: Vec<TaskMeta> = (0..3000).map(|i| TaskMeta::new(json!({"i": i}))).collect();
    for chunk in metas.chunks(1000) {
        s.client.create_tasks("work", chunk).await.unwrap();
    }
    let server_errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut good = Vec::new();
    for w in 0..8 {
        let (client, errors, done) = (s.client.clone(), server_errors.clone(), done.clone());
        good.push(tokio::spawn(async move {
            let name = format!("good-{w}");
            let mut released = Vec::new();
            loop {
                match client.retain_task(&name, &["work"]).await {
                    Ok(Some(t)) => match client
                        .release_task(t.id, Release::success(Some(json!(w))).by(&*name))
                        .await
                    {
                        Ok(_) => released.push(t.id),
                        Err(ClientError::Api { status, .. }) if status >= 500 => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("release: {e}"),
                    },
                    Ok(None) => break,
                    Err(ClientError::Api { status, .. }) if status >= 500 => {
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("retain: {e}"),
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
            released
        }));
    }
    let mut poison = Vec::new();
    for _ in 0..2 {
        let (addr, done) = (s.addr, done.clone());
        poison.push(tokio::spawn(async move {
            let mut refused = 0;
            let mut id = 1;
            while done.load(Ordering::SeqCst) < 8 {
                let r = raw(addr, &request("PUT", "/api/task?worker=a%00b", "")).await;
                assert_eq!(r.status, 400, "{r:?}");
                let body = r#"{"result":"x\u0000y","worker":"good-0"}"#;
                let r = raw(addr, &request("PATCH", &format!("/api/task/{id}"), body)).await;
                assert_eq!(r.status, 400, "{r:?}");
                refused += 2;
                id = id % 3000 + 1;
            }
            refused
        }));
    }
    let mut all = Vec::new();
    for g in good {
        all.extend(g.await.unwrap());
    }
    let mut refused = 0;
    for p in poison {
        refused += p.await.unwrap();
    }
    assert!(refused > 0, "the poison clients sent something");
    assert_eq!(
        server_errors.load(Ordering::SeqCst),
        0,
        "5xx for good clients"
    );
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        (all.len(), unique.len()),
        (3000, 3000),
        "each released once"
    );
}

/// A number's value in a canonical spelling (sign, significant digits, exponent), so that
/// `1e400` and the 401 digits PostgreSQL prints for it compare equal.
fn canonical(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", number),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().unwrap()),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let lead = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return "0".into();
    }
    let point = int.len() as i64 - lead as i64 + exp;
    format!("{sign}0.{significant}e{point}")
}

/// Every number inside `v`, canonical, in document order of a sorted walk.
fn numbers(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Number(n) => out.push(canonical(&n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| numbers(x, out)),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter().for_each(|k| numbers(&m[k], out));
        }
        _ => {}
    }
}

/// Finding 3: payloads come back number for number, on every read and after any number of
/// round trips, and a payload at f64's edge can be read, listed, retained and released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_kept_digit_for_digit() {
    let s = start().await;
    queue(&s, "u").await;
    let sent = r#"{"n":123456789012345678901234567890,"f":-8.822190132575686e-69,
        "max":1.7976931348623157e308,"huge":1e400,"p":0.1000000000000000055511151231257827}"#;
    let mut expected = Vec::new();
    numbers(&serde_json::from_str(sent).unwrap(), &mut expected);
    let mut payload: Value = serde_json::from_str(sent).unwrap();
    for round in 0..5 {
        let created = send(
            &s,
            "POST",
            "/api/task",
            &format!(r#"{{"queue":"u","payload":{payload}}}"#),
        )
        .await;
        assert_eq!(created.status, 201, "{created:?}");
        let id = serde_json::from_str::<Value>(&created.body).unwrap()["id"]
            .as_i64()
            .unwrap();
        let read = send(&s, "GET", &format!("/api/task/{id}"), "").await;
        assert_eq!(read.status, 200, "{read:?}");
        payload = serde_json::from_str::<Value>(&read.body).unwrap()["payload"].clone();
        let mut got = Vec::new();
        numbers(&payload, &mut got);
        assert_eq!(got, expected, "round {round}");
    }
    let list = send(&s, "GET", "/api/task?queue=u", "").await;
    assert_eq!(list.status, 200, "{list:?}");
    let retained = send(&s, "PUT", "/api/task/u?worker=w", "").await;
    assert_eq!(retained.status, 200, "{retained:?}");
    let id = serde_json::from_str::<Value>(&retained.body).unwrap()["id"]
        .as_i64()
        .unwrap();
    let released = send(
        &s,
        "PATCH",
        &format!("/api/task/{id}"),
        &format!(r#"{{"result":{payload}}}"#),
    )
    .await;
    assert_eq!(released.status, 200, "{released:?}");
    let mut got = Vec::new();
    numbers(
        &serde_json::from_str::<Value>(&released.body).unwrap()["result"],
        &mut got,
    );
    assert_eq!(got, expected);
}

/// Finding 4: durations below 100 ms are refused with a hint at the unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanosecond_footguns_are_refused() {
    let s = start().await;
    let r = send(&s, "POST", "/api/ticker", r#"{"ticker":"t","interval":60}"#).await;
    assert_refused(
        &r,
        400,
        "invalid interval: must be at least 100ms, got 60ns (JSON durations are integer nanoseconds, or strings such as \"60s\")",
    );
    for field in ["ttl", "lease"] {
        let body = format!(r#"{{"queue":"q","{field}":60}}"#);
        assert_refused(
            &send(&s, "POST", "/api/queue", &body).await,
            400,
            &format!("invalid {field}: must be at least 100ms"),
        );
    }
    let ok = send(
        &s,
        "POST",
        "/api/queue",
        r#"{"queue":"q","ttl":"100ms","lease":100000000}"#,
    )
    .await;
    assert_eq!(ok.status, 201, "{ok:?}");
}

/// Finding 6: answers the HTTP stack would give bare are envelopes, and a 405 names the
/// method used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_routing_errors_are_envelopes() {
    let s = start().await;
    let long = format!("/api/task?queue={}", "q".repeat(10_000));
    assert_refused(
        &send(&s, "GET", &long, "").await,
        414,
        "request target is longer",
    );
    let big = format!(
        "GET /api/queue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    assert_refused(
        &raw(s.addr, big.as_bytes()).await,
        431,
        "request headers are larger",
    );
    assert_refused(
        &send(&s, "GET", "/api/queue/%FF%FE", "").await,
        400,
        "invalid queue name",
    );
    let options = send(&s, "OPTIONS", "/api/task/0", "").await;
    assert_refused(&options, 405, "method OPTIONS is not allowed");
    assert!(
        options
            .head
            .to_ascii_lowercase()
            .contains("allow: get, put, patch"),
        "{}",
        options.head
    );
    assert_refused(
        &send(&s, "TRACE", "/api/queue", "").await,
        405,
        "method TRACE is not allowed",
    );
}

/// Finding 9: an instant that RFC 3339 cannot write is refused where it is given, and the
/// times pgqueue computes stop at 9999-12-31.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_stay_within_rfc3339() {
    let s = start().await;
    let q = format!(r#"{{"queue":"far","ttl":{}}}"#, i64::MAX);
    assert_eq!(send(&s, "POST", "/api/queue", &q).await.status, 201);
    let r = send(
        &s,
        "POST",
        "/api/task",
        r#"{"queue":"far","payload":1,"delayed_at":"9999-12-31T00:00:00Z"}"#,
    )
    .await;
    assert_refused(&r, 400, "invalid delayed_at");
    let r = send(
        &s,
        "POST",
        "/api/task",
        r#"{"queue":"far","payload":1,"delayed_at":"9000-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let dies = serde_json::from_str::<Value>(&r.body).unwrap()["dies_at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(dies.starts_with("9292-"), "{dies}");
    let list = send(&s, "GET", "/api/task?queue=far", "").await;
    assert!(
        !list.body.contains("\"+1"),
        "an expanded year: {}",
        list.body
    );
}

/// Finding 11: the series of deleted queues leave `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_do_not_grow_with_queue_churn() {
    let s = start().await;
    for i in 0..300 {
        let name = format!("churn{i}");
        queue(&s, &name).await;
        s.client
            .create_task(&name, &TaskMeta::new(json!(i)))
            .await
            .unwrap()
            .into_task();
        let t = s.client.retain_task("w", &[&name]).await.unwrap().unwrap();
        s.client
            .release_task(t.id, Release::success(None))
            .await
            .unwrap();
        s.client.delete_queue(&name).await.unwrap();
        if i % 100 == 99 {
            let text = s.client.metrics().await.unwrap();
            assert!(
                !text.contains("queue=\"churn"),
                "stale series after {i} cycles"
            );
        }
    }
    queue(&s, "kept").await;
    s.client
        .create_task("kept", &TaskMeta::new(json!(1)))
        .await
        .unwrap()
        .into_task();
    let text = s.client.metrics().await.unwrap();
    assert!(
        text.contains("pgqueue_tasks_created_total{namespace=\"e2e\",queue=\"kept\"} 1"),
        "{text}"
    );
}

/// Finding 5: a client that trickles its headers is cut off after the header timeout, and
/// SIGTERM ends the server within the shutdown timeout while another trickles a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_the_server() {
    let db = fresh_database().await;
    let mut s = Server::start_with(
        Some(db.url()),
        "127.0.0.1:0",
        &[],
        &["--http.header-timeout", "1s", "--shutdown-timeout", "2s"],
    )
    .await;
    let addr: SocketAddr = s.addr.parse().unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/queue HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let began = Instant::now();
    let mut buf = [0u8; 256];
    let closed = loop {
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break true;
        }
        match tokio::time::timeout(Duration::from_millis(300), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            _ if began.elapsed() > Duration::from_secs(5) => break false,
            _ => {}
        }
    };
    assert!(closed, "a trickling client was not cut off");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );

    let mut body = TcpStream::connect(addr).await.unwrap();
    body.write_all(b"POST /api/queue HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        while body.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    s.signal(libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(5), s.child.wait())
        .await
        .expect("the server exits within its shutdown timeout")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    trickle.abort();
}

/// The body timeout answers a request whose body stops arriving with a 408 envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_is_a_408() {
    let s = start_with(HttpConfig {
        body_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /api/queue HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"queue\"")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"object\":\"error\""), "{text}");
}
