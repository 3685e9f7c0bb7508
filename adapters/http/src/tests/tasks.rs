use super::*;
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test]
async fn a_task_lives_through_retain_failure_backoff_and_release() {
    let api = api();
    api.queue(json!({"queue":"emails","retries":2,"retry_delay":"10s"}))
        .await;
    let t = api.task("emails", json!({"to":"a@b"})).await;
    assert_eq!(t["status"], "new");
    assert_eq!(t["retries"], 2);
    assert_eq!(t["payload"], json!({"to":"a@b"}));
    assert!(t.get("result").is_none());
    let id = t["id"].as_i64().unwrap();

    let got = api.call("GET", &format!("/api/task/{id}"), None).await;
    assert_eq!(got.json(), t);

    let r = api.call("PUT", "/api/task?worker=w1", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["id"], id);
    assert_eq!(r.json()["status"], "retained");
    assert_eq!(r.json()["worker"], "w1");

    // Failure: attempts remain, so retry after 1 × retry_delay.
    let failed = api
        .call(
            "PATCH",
            &format!("/api/task/{id}"),
            Some(json!({"fail":true,"result":{"error":"smtp down"}})),
        )
        .await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    let f = failed.json();
    assert_eq!(f["status"], "retry");
    assert_eq!(f["retries"], 1);
    assert_eq!(f["result"], json!({"error":"smtp down"}));
    let delayed: DateTime<Utc> = serde_json::from_value(f["delayed_at"].clone()).unwrap();
    assert_eq!(delayed, t0() + TimeDelta::seconds(10));

    // Not due yet.
    let none = api.call("PUT", "/api/task?worker=w1", None).await;
    assert_eq!(none.status, 204);
    assert!(none.text.is_empty());

    api.clock.advance(TimeDelta::seconds(10));
    let again = api.call("PUT", "/api/task/emails?worker=w2", None).await;
    assert_eq!(again.json()["id"], id);
    let done = api
        .call(
            "PATCH",
            &format!("/api/task/{id}"),
            Some(json!({"result":{"sent":true}})),
        )
        .await;
    assert_eq!(done.json()["status"], "released");
    assert_eq!(done.json()["result"], json!({"sent":true}));

    api.call("PATCH", &format!("/api/task/{id}"), Some(json!({})))
        .await
        .assert_error(409, "task is not retained");
}

#[tokio::test]
async fn the_last_failure_fails_the_task_and_an_empty_release_body_is_success() {
    let api = api();
    api.queue(json!({"queue":"q","retries":1})).await;
    let id = api.task("q", json!(null)).await["id"].as_i64().unwrap();
    api.call("PUT", "/api/task?worker=w", None).await;
    let r = api
        .call(
            "PATCH",
            &format!("/api/task/{id}"),
            Some(json!({"fail":true})),
        )
        .await
        .json();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["result"], Value::Null);
    assert!(r.get("finished_at").is_some());

    let id2 = api.task("q", json!(2)).await["id"].as_i64().unwrap();
    api.call("PUT", "/api/task?worker=w", None).await;
    let ok = api.raw("PATCH", &format!("/api/task/{id2}"), "").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["status"], "released");
    assert!(ok.json().get("result").is_none());
}

#[tokio::test]
async fn retaining_any_or_several_queues_and_fencing() {
    let api = api();
    for q in ["a", "b", "c"] {
        api.queue(json!({ "queue": q })).await;
    }
    let ta = api.task("a", json!("a")).await["id"].as_i64().unwrap();
    let tb = api.task("b", json!("b")).await["id"].as_i64().unwrap();
    let tc = api.task("c", json!("c")).await["id"].as_i64().unwrap();

    let r = api
        .call("PUT", "/api/task?worker=w&queue=c&queue=b", None)
        .await;
    assert_eq!(r.json()["id"], tb, "oldest of b and c");
    let r = api.call("PUT", "/api/task?worker=w&queue=c", None).await;
    assert_eq!(r.json()["id"], tc);
    let r = api
        .call("PUT", "/api/task?worker=w&queue=ghost", None)
        .await;
    assert_eq!(r.status, 204, "unknown names match nothing");
    let r = api.call("PUT", "/api/task?worker=other", None).await;
    assert_eq!(r.json()["id"], ta, "no queue means any queue");

    // Fencing: only the holder may release or heartbeat.
    api.call(
        "PATCH",
        &format!("/api/task/{ta}"),
        Some(json!({"worker":"w"})),
    )
    .await
    .assert_error(409, "not retained by worker");
    api.call("POST", &format!("/api/task/{ta}/heartbeat?worker=w"), None)
        .await
        .assert_error(409, "not retained by worker");
    api.clock.advance(TimeDelta::seconds(30));
    let hb = api
        .call(
            "POST",
            &format!("/api/task/{ta}/heartbeat?worker=other"),
            None,
        )
        .await;
    assert_eq!(hb.status, 200, "{}", hb.text);
    let lease: DateTime<Utc> =
        serde_json::from_value(hb.json()["lease_expires_at"].clone()).unwrap();
    assert_eq!(lease, t0() + TimeDelta::seconds(30) + TimeDelta::minutes(5));
    let ok = api
        .call(
            "PATCH",
            &format!("/api/task/{ta}"),
            Some(json!({"worker":"other"})),
        )
        .await;
    assert_eq!(ok.json()["status"], "released");
}

#[tokio::test]
async fn retain_and_heartbeat_errors() {
    let api = api();
    api.queue(json!({"queue":"q"})).await;
    api.call("PUT", "/api/task", None)
        .await
        .assert_error(400, "missing worker");
    api.call("PUT", "/api/task?worker=%20", None)
        .await
        .assert_error(400, "missing worker");
    api.call("PUT", "/api/task/q", None)
        .await
        .assert_error(400, "missing worker");
    api.call("PUT", "/api/task/ghost?worker=w", None)
        .await
        .assert_error(404, "not found");
    let none = api.call("PUT", "/api/task/q?worker=w", None).await;
    assert_eq!(none.status, 204);
    api.call("PUT", "/api/task?worker=w&queue=bad!", None)
        .await
        .assert_error(400, "invalid queue name");
    api.call("POST", "/api/task/1/heartbeat", None)
        .await
        .assert_error(400, "missing worker");
    api.call("POST", "/api/task/999/heartbeat?worker=w", None)
        .await
        .assert_error(404, "task 999 not found");
    api.call("POST", "/api/task/x/heartbeat?worker=w", None)
        .await
        .assert_error(400, "invalid task id");
    api.call("GET", "/api/task/abc", None)
        .await
        .assert_error(400, "invalid task id \"abc\"");
    api.call("GET", "/api/task/999", None)
        .await
        .assert_error(404, "task 999 not found");
    api.call("PATCH", "/api/task/999", Some(json!({})))
        .await
        .assert_error(404, "task 999 not found");
    api.call("PATCH", "/api/task/1", Some(json!({"fail":"yes"})))
        .await
        .assert_error(400, "invalid type");
    api.call("PATCH", "/api/task/1", Some(json!({"failed":true})))
        .await
        .assert_error(400, "unknown field");
    api.call("PATCH", "/api/task/1", Some(json!({"worker":""})))
        .await
        .assert_error(400, "missing worker");
}

#[tokio::test]
async fn creating_tasks_one_or_in_batches() {
    let api = api();
    api.queue(json!({"queue":"q"})).await;
    api.call("POST", "/api/task", Some(json!({"queue":"q"})))
        .await
        .assert_error(400, "missing payload");
    let null = api
        .call(
            "POST",
            "/api/task",
            Some(json!({"queue":"q","payload":null})),
        )
        .await;
    assert_eq!(null.status, 201);
    assert_eq!(null.json()["payload"], Value::Null);
    api.call("POST", "/api/task", Some(json!({"payload":1})))
        .await
        .assert_error(400, "missing queue name");
    api.call(
        "POST",
        "/api/task",
        Some(json!({"queue":"ghost","payload":1})),
    )
    .await
    .assert_error(404, "not found");
    api.call(
        "POST",
        "/api/task",
        Some(json!({"queue":"q","payload":1,"delayed_at":"2026-03-01T11:00:00Z"})),
    )
    .await
    .assert_error(400, "delayed_at is in the past");
    let delayed = api
        .call(
            "POST",
            "/api/task",
            Some(json!({"queue":"q","payload":1,"delayed_at":"2026-03-01T13:00:00Z"})),
        )
        .await;
    assert_eq!(delayed.status, 201);
    assert_eq!(delayed.json()["delayed_at"], json!("2026-03-01T13:00:00Z"));

    let batch = api
        .call(
            "POST",
            "/api/task",
            Some(json!([{"queue":"q","payload":1},{"queue":"Q","payload":2}])),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.text);
    let b = batch.json();
    assert_eq!(b["count"], 2);
    assert_eq!(b["body"][1]["payload"], 2);

    api.call("POST", "/api/task", Some(json!([])))
        .await
        .assert_error(400, "at least one task");
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| json!({"queue":"q","payload":i}))
        .collect();
    api.call("POST", "/api/task", Some(Value::Array(too_many)))
        .await
        .assert_error(400, "at most 10000");
    api.call(
        "POST",
        "/api/task",
        Some(json!([{"queue":"q","payload":1},{"queue":"r","payload":2}])),
    )
    .await
    .assert_error(400, "same queue");
    // All or nothing: a missing payload in a batch creates none.
    let before = api.call("GET", "/api/task?limit=0", None).await.json()["count"].clone();
    api.call(
        "POST",
        "/api/task",
        Some(json!([{"queue":"q","payload":1},{"queue":"q"}])),
    )
    .await
    .assert_error(400, "missing payload");
    let after = api.call("GET", "/api/task?limit=0", None).await.json()["count"].clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn listing_tasks_filters_by_queue_and_status() {
    let api = api();
    api.queue(json!({"queue":"a"})).await;
    api.queue(json!({"queue":"b"})).await;
    let a1 = api.task("a", json!(1)).await["id"].as_i64().unwrap();
    api.task("a", json!(2)).await;
    api.task("b", json!(3)).await;
    api.call("PUT", "/api/task/a?worker=w", None).await;

    let all = api.call("GET", "/api/task", None).await.json();
    assert_eq!(all["count"], 3);
    let of_a = api.call("GET", "/api/task?queue=a", None).await.json();
    assert_eq!(of_a["count"], 2);
    let retained = api
        .call("GET", "/api/task?status=retained", None)
        .await
        .json();
    assert_eq!(retained["count"], 1);
    assert_eq!(retained["body"][0]["id"], a1);
    let new_b = api
        .call("GET", "/api/task?queue=b&status=new&limit=1", None)
        .await
        .json();
    assert_eq!(new_b["count"], 1);
    api.call("GET", "/api/task?status=done", None)
        .await
        .assert_error(400, "invalid status \"done\"");
    api.call("GET", "/api/task?offset=x", None)
        .await
        .assert_error(400, "invalid offset");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let api = api_with(HttpConfig {
        body_limit: 64,
        ..Default::default()
    });
    api.queue(json!({"queue":"q"})).await;
    let big = json!({"queue":"q","payload":"x".repeat(100)});
    api.call("POST", "/api/task", Some(big))
        .await
        .assert_error(413, "larger than the limit of 64 bytes");
}
