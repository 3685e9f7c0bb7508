//! HTTP at batch speed: retains of many tasks, long-polling retains, batch releases.

use super::*;
use serde_json::json;
use std::time::{Duration, Instant};

async fn three_tasks(api: &Api) -> Vec<i64> {
    api.queue(json!({"queue":"q"})).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.task("q", json!(i)).await["id"].as_i64().unwrap());
    }
    ids
}

#[tokio::test]
async fn a_retain_with_limit_answers_a_list_never_204() {
    let api = api();
    let ids = three_tasks(&api).await;
    let got = api.call("PUT", "/api/task?worker=w&limit=2", None).await;
    assert_eq!(got.status, 200);
    let got = got.json();
    assert_eq!(got["count"], 2);
    let first: Vec<i64> = got["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(first, ids[..2]);
    let rest = api.call("PUT", "/api/task/q?worker=w&limit=5", None).await;
    assert_eq!((rest.status, rest.json()["count"].clone()), (200, json!(1)));
    let none = api.call("PUT", "/api/task?worker=w&limit=5", None).await;
    assert_eq!((none.status, none.json()), (200, json!({"count":0})));
    for (path, needle) in [
        (
            "/api/task?worker=w&limit=0",
            "invalid limit: must be between 1 and 1000, got 0",
        ),
        (
            "/api/task?worker=w&limit=1001",
            "invalid limit: must be between 1 and 1000",
        ),
        ("/api/task?worker=w&limit=x", "invalid limit \"x\""),
        (
            "/api/task?worker=w&wait=61s",
            "invalid wait: must be at most 60s",
        ),
        (
            "/api/task?worker=w&wait=-1s",
            "invalid wait \"-1s\": must not be negative",
        ),
        ("/api/task?worker=w&wait=soon", "invalid wait \"soon\""),
        (
            "/api/task/ghost?worker=w&wait=1s",
            "queue \"ghost\" not found",
        ),
    ] {
        let status = if path.contains("ghost") { 404 } else { 400 };
        api.call("PUT", path, None)
            .await
            .assert_error(status, needle);
    }
}

#[tokio::test]
async fn a_waiting_retain_is_answered_when_a_task_arrives_or_its_wait_ends() {
    let api = api();
    api.queue(json!({"queue":"q"})).await;
    let started = Instant::now();
    let (got, _) = tokio::join!(
        api.call("PUT", "/api/task?worker=w&queue=q&wait=10s", None),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            api.task("q", json!("late")).await
        }
    );
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json()["payload"], "late");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the task, not by the end of the wait"
    );
    let started = Instant::now();
    let empty = api.call("PUT", "/api/task?worker=w&wait=300ms", None).await;
    assert_eq!(empty.status, 204);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let listed = api
        .call("PUT", "/api/task?worker=w&wait=100ms&limit=10", None)
        .await;
    assert_eq!((listed.status, listed.json()), (200, json!({"count":0})));
}

#[tokio::test]
async fn a_waiting_retain_answers_at_once_when_the_server_stops() {
    let api = api();
    let started = Instant::now();
    let (got, _) = tokio::join!(
        api.call("PUT", "/api/task?worker=w&wait=30s", None),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            api.stop.send(true).unwrap();
        }
    );
    assert_eq!(got.status, 204);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_batch_release_answers_each_item_on_its_own() {
    let api = api();
    let ids = three_tasks(&api).await;
    let held = api.call("PUT", "/api/task?worker=w&limit=2", None).await;
    assert_eq!(held.json()["count"], 2);
    let got = api
        .call(
            "PATCH",
            "/api/task",
            Some(json!([
                {"id": ids[0], "result": {"ok": true}},
                {"id": ids[1], "fail": true, "result": "boom", "worker": "someone-else"},
                {"id": 999},
                {"id": ids[0]},
                {"id": ids[2]},
                {"id": ids[1], "result": {"n": "a\u{0}b"}},
            ])),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let body = got.json()["body"].clone();
    let codes: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![200, 409, 404, 400, 409, 400], "{body}");
    assert_eq!(body[0]["task"]["status"], "released");
    assert_eq!(body[0]["task"]["result"], json!({"ok": true}));
    assert!(
        body[1]["reason"].as_str().unwrap().contains("someone-else"),
        "{body}"
    );
    assert!(
        body[3]["reason"].as_str().unwrap().contains("twice"),
        "{body}"
    );
    assert_eq!(body[2]["id"], 999);
    // The refused items changed nothing: the second task is still held.
    let second = api
        .call("GET", &format!("/api/task/{}", ids[1]), None)
        .await;
    assert_eq!(second.json()["status"], "retained");
    for (bad, needle) in [
        (json!([]), "1 to 1000 items, got 0"),
        (json!({"id": 1}), "array"),
        (json!([{"result": 1}]), "missing field `id`"),
        (json!([{"id": 1, "bogus": 1}]), "unknown field `bogus`"),
    ] {
        api.call("PATCH", "/api/task", Some(bad))
            .await
            .assert_error(400, needle);
    }
}
