//! Garbled requests: whatever a client sends, the answer is never a 5xx, and every error is
//! a well-formed envelope whose `code` is the HTTP status.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW",
];
const SEGMENTS: &[&str] = &[
    "queue",
    "task",
    "ticker",
    "namespace",
    "metrics",
    "openapi.json",
    "next",
    "heartbeat",
    "q",
    "1",
    "0",
    "-1",
    "abc",
    "99999999999999999999",
    "%00",
    "%ff",
    "a%20b",
    "Q",
    "..",
    "%2F",
    "t",
    "",
];
const KEYS: &[&str] = &["offset", "limit", "status", "queue", "worker", "x"];
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "abc",
    "100000",
    "new",
    "retry",
    "done",
    "q",
    "t",
    "w",
    "%zz",
    "%ff",
    "a+b",
    "bad!",
    "18446744073709551616",
];
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some(";;;"),
];

fn body(rng: &mut StdRng) -> Vec<u8> {
    let valid = [
        json!({"queue":"q","payload":1}),
        json!([{"queue":"q","payload":1},{"queue":"q","payload":null}]),
        json!({"queue":"q","retries":2,"ttl":"1m"}),
        json!({"ticker":"t","interval":"1s"}),
        json!({"fail":true,"result":"x","worker":"w"}),
        json!({"result":{"a":[1,2]}}),
        json!({}),
        json!([]),
        json!(null),
        json!({"queue":5}),
        json!({"retries":-1}),
        json!({"ttl":"forever"}),
        json!({"delayed_at":"yesterday","queue":"q","payload":1}),
    ];
    match rng.random_range(0..6) {
        0 => Vec::new(),
        1 => (0..rng.random_range(1..64)).map(|_| rng.random()).collect(),
        2 => {
            let mut s = valid[rng.random_range(0..valid.len())]
                .to_string()
                .into_bytes();
            let cut = rng.random_range(0..=s.len());
            s.truncate(cut);
            s
        }
        _ => valid[rng.random_range(0..valid.len())]
            .to_string()
            .into_bytes(),
    }
}

fn path(rng: &mut StdRng) -> String {
    let mut p = if rng.random_bool(0.9) {
        "/api".to_string()
    } else {
        String::new()
    };
    for _ in 0..rng.random_range(0..4) {
        p.push('/');
        p.push_str(SEGMENTS[rng.random_range(0..SEGMENTS.len())]);
    }
    if p.is_empty() {
        p.push('/');
    }
    if rng.random_bool(0.6) {
        let pairs: Vec<String> = (0..rng.random_range(1..4))
            .map(|_| {
                format!(
                    "{}={}",
                    KEYS[rng.random_range(0..KEYS.len())],
                    VALUES[rng.random_range(0..VALUES.len())]
                )
            })
            .collect();
        p.push('?');
        p.push_str(&pairs.join("&"));
    }
    p
}

#[tokio::test]
async fn garbled_requests_never_fail_the_server() {
    let api = api();
    // SSE streams end at once on a stopped server, so they can be fuzzed too.
    api.stop.send(true).unwrap();
    api.queue(json!({"queue":"q"})).await;
    api.call("POST", "/api/ticker", Some(json!({"ticker":"t"})))
        .await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..3000 {
        let method = METHODS[rng.random_range(0..METHODS.len())];
        let path = path(&mut rng);
        let body = body(&mut rng);
        let mut req = warp::test::request().method(method).path(&path);
        if let Some(ct) = CONTENT_TYPES[rng.random_range(0..CONTENT_TYPES.len())] {
            req = req.header("content-type", ct);
        }
        if rng.random_bool(0.1) {
            req = req.header("accept", "text/event-stream");
        }
        let r = api.send(req.body(body.clone())).await;
        *statuses.entry(r.status).or_default() += 1;
        let context = format!(
            "request {i}: {method} {path} body {:?} -> {} {}",
            String::from_utf8_lossy(&body),
            r.status,
            r.text
        );
        assert!(r.status < 500, "{context}");
        if r.status >= 400 {
            let v: Value = serde_json::from_str(&r.text).expect(&context);
            assert_eq!(v["object"], "error", "{context}");
            assert_eq!(v["code"], r.status, "{context}");
            assert!(
                v["reason"].as_str().is_some_and(|s| !s.is_empty()),
                "{context}"
            );
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert!(
                keys.iter()
                    .all(|k| ["object", "code", "reason", "detail"].contains(&k.as_str())),
                "{context}"
            );
        }
    }
    // The mix reached the handlers, not only the router.
    for status in [200, 201, 400, 404, 405] {
        assert!(
            statuses.contains_key(&status),
            "no {status} in {statuses:?}"
        );
    }
}
