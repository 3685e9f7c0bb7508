use super::*;
use serde_json::json;

#[tokio::test]
async fn queue_crud_round_trips_with_the_wire_shape() {
    let api = api();
    let q = api
        .queue(json!({"queue":" Emails ","retries":5,"ttl":"90s"}))
        .await;
    assert_eq!(
        q,
        json!({"queue":"emails","ttl":90_000_000_000i64,"retries":5,
               "retry_delay":120_000_000_000i64,"lease":300_000_000_000i64,"namespace":"app"})
    );
    let got = api.call("GET", "/api/queue/EMAILS", None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), q);

    let dup = api
        .call("POST", "/api/queue", Some(json!({"queue":"emails"})))
        .await;
    dup.assert_error(409, "queue already exists");

    let patched = api
        .call("PATCH", "/api/queue/emails", Some(json!({"retries":1})))
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["retries"], 1);
    assert_eq!(patched.json()["ttl"], 90_000_000_000i64);

    api.call("PATCH", "/api/queue/emails", Some(json!({})))
        .await
        .assert_error(400, "no patch values");

    let renamed = api
        .call("PATCH", "/api/queue/emails", Some(json!({"queue":"mails"})))
        .await;
    assert_eq!(renamed.json()["queue"], "mails");
    api.call("GET", "/api/queue/emails", None)
        .await
        .assert_error(404, "not found");

    api.queue(json!({"queue":"other"})).await;
    api.call("PATCH", "/api/queue/mails", Some(json!({"queue":"other"})))
        .await
        .assert_error(409, "");

    let deleted = api.call("DELETE", "/api/queue/mails", None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["queue"], "mails");
    api.call("DELETE", "/api/queue/mails", None)
        .await
        .assert_error(404, "not found");
}

#[tokio::test]
async fn queue_input_errors_are_400_naming_the_problem() {
    let api = api();
    api.call("POST", "/api/queue", Some(json!({})))
        .await
        .assert_error(400, "missing queue name");
    api.call(
        "POST",
        "/api/queue",
        Some(json!({"queue":"invalid queue!"})),
    )
    .await
    .assert_error(400, "invalid queue name: \"invalid queue!\"");
    api.call(
        "POST",
        "/api/queue",
        Some(json!({"queue":"q","retries":1001})),
    )
    .await
    .assert_error(400, "retries");
    api.call("POST", "/api/queue", Some(json!({"queue":"q","ttl":0})))
        .await
        .assert_error(400, "ttl");
    api.call(
        "POST",
        "/api/queue",
        Some(json!({"queue":"q","ttl":"soon"})),
    )
    .await
    .assert_error(400, "invalid duration");
    api.call(
        "POST",
        "/api/queue",
        Some(json!({"queue":"q","retries":"3"})),
    )
    .await
    .assert_error(400, "invalid type");
    api.call("POST", "/api/queue", Some(json!({"queue":"q","bogus":1})))
        .await
        .assert_error(400, "unknown field");
    api.call("POST", "/api/queue", Some(json!([1, 2])))
        .await
        .assert_error(400, "invalid JSON body");
    api.raw("POST", "/api/queue", "{\"queue\":")
        .await
        .assert_error(400, "invalid JSON body");
    api.raw("POST", "/api/queue", "")
        .await
        .assert_error(400, "missing request body");
    api.call("GET", "/api/queue/bad%20name!", None)
        .await
        .assert_error(400, "invalid queue name");
    let ct = api
        .send(
            warp::test::request()
                .method("POST")
                .path("/api/queue")
                .header("content-type", "text/plain")
                .body(r#"{"queue":"q"}"#),
        )
        .await;
    ct.assert_error(400, "JSON is expected");
    let ok = api
        .send(
            warp::test::request()
                .method("POST")
                .path("/api/queue")
                .header("content-type", "application/json; charset=utf-8")
                .body(r#"{"queue":"q"}"#),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

#[tokio::test]
async fn lists_paginate_with_the_envelope() {
    let api = api();
    let empty = api.call("GET", "/api/queue", None).await;
    assert_eq!(empty.json(), json!({"count":0}));
    for name in ["c", "a", "b"] {
        api.queue(json!({ "queue": name })).await;
    }
    let all = api.call("GET", "/api/queue", None).await.json();
    assert_eq!(all["count"], 3);
    let names: Vec<&str> = all["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let page = api
        .call("GET", "/api/queue?offset=1&limit=1", None)
        .await
        .json();
    assert_eq!(page["count"], 3);
    assert_eq!(page["body"][0]["queue"], "b");
    assert_eq!(page["body"].as_array().unwrap().len(), 1);
    let zero = api.call("GET", "/api/queue?limit=0", None).await.json();
    assert_eq!(zero, json!({"count":3}));
    api.call("GET", "/api/queue?offset=abc", None)
        .await
        .assert_error(400, "invalid offset \"abc\"");
    api.call("GET", "/api/queue?limit=-5", None)
        .await
        .assert_error(400, "invalid limit");
}

#[tokio::test]
async fn namespaces_list_the_tenants() {
    let api = api();
    assert_eq!(
        api.call("GET", "/api/namespace", None).await.json(),
        json!({"count":0})
    );
    api.queue(json!({"queue":"q"})).await;
    assert_eq!(
        api.call("GET", "/api/namespace", None).await.json(),
        json!({"count":1,"body":["app"]})
    );
}

#[tokio::test]
async fn queue_limits_are_set_shown_removed_by_null_and_counted_when_they_refuse() {
    let api = api();
    let q = api
        .queue(json!({"queue":"api","max_running":1,"rate":{"per_second":100,"burst":20}}))
        .await;
    assert_eq!(q["max_running"], 1);
    assert_eq!(q["rate"], json!({"per_second":100.0,"burst":20}));
    api.task("api", json!(1)).await;
    api.task("api", json!(2)).await;
    let first = api.call("PUT", "/api/task?worker=w&queue=api", None).await;
    assert_eq!(first.status, 200);
    let refused = api.call("PUT", "/api/task?worker=w&queue=api", None).await;
    assert_eq!(refused.status, 204, "max_running 1: the second waits");
    let metrics = api.call("GET", "/api/metrics", None).await.text;
    assert!(
        metrics.contains(
            r#"pgqueue_retains_limited_total{limit="max_running",namespace="app",queue="api"} 1"#
        ),
        "{metrics}"
    );
    let removed = api
        .call("PATCH", "/api/queue/api", Some(json!({"max_running":null})))
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(removed.json().get("max_running"), None);
    assert_eq!(removed.json()["rate"]["burst"], 20, "the rate stays");
    let second = api.call("PUT", "/api/task?worker=w&queue=api", None).await;
    assert_eq!(second.status, 200, "the next claim sees no limit");
    for (body, needle) in [
        (
            json!({"max_running":0}),
            "invalid max_running: must be between 1 and 1000000, got 0",
        ),
        (
            json!({"rate":{"per_second":0}}),
            "per_second must be more than 0",
        ),
        (
            json!({"rate":{"per_second":5,"burst":0}}),
            "burst must be between 1 and 1000000",
        ),
        (json!({"rate":{"burst":5}}), "per_second"),
        (json!({"rate":5}), "rate"),
    ] {
        api.call("PATCH", "/api/queue/api", Some(body))
            .await
            .assert_error(400, needle);
    }
}
