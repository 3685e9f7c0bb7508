use super::*;
use crate::router::ROUTES;
use serde_json::json;

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_envelopes() {
    let api = api();
    api.call("GET", "/api/nope", None)
        .await
        .assert_error(404, "no route");
    api.call("GET", "/elsewhere", None)
        .await
        .assert_error(404, "no route");
    api.call("GET", "/api", None)
        .await
        .assert_error(404, "no route");
    api.call("GET", "/api/task/1/heartbeat/more", None)
        .await
        .assert_error(404, "no route");
    let r = api.call("DELETE", "/api/queue", None).await;
    r.assert_error(405, "DELETE");
    assert_eq!(r.headers["allow"], "GET, POST");
    assert_eq!(r.json()["detail"], json!({"allow":["GET","POST"]}));
    api.call("POST", "/api/metrics", None)
        .await
        .assert_error(405, "not allowed");
    api.call("BREW", "/api/task", None)
        .await
        .assert_error(405, "not allowed");
}

#[tokio::test]
async fn health_checks_answer_get_and_refuse_other_methods_with_405() {
    let api = api();
    let r = api.call("GET", "/healthz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    let r = api.call("GET", "/readyz", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ready"}));
    for (method, path) in [
        ("POST", "/healthz"),
        ("TRACE", "/readyz"),
        ("DELETE", "/readyz"),
    ] {
        let r = api.call(method, path, None).await;
        r.assert_error(405, "not allowed");
        assert_eq!(r.headers["allow"], "GET, HEAD", "{method} {path}");
    }
}

#[tokio::test]
async fn the_prefix_is_configurable() {
    let api = api_with(HttpConfig {
        prefix: "v2/".into(),
        ..Default::default()
    });
    assert_eq!(api.call("GET", "/v2/queue", None).await.status, 200);
    api.call("GET", "/api/queue", None)
        .await
        .assert_error(404, "no route");
}

#[tokio::test]
async fn metrics_count_tasks_per_queue_and_status_at_scrape_time() {
    let api = api();
    api.queue(json!({"queue":"a"})).await;
    api.queue(json!({"queue":"b"})).await;
    for i in 0..3 {
        api.task("a", json!(i)).await;
    }
    let id = api.call("PUT", "/api/task/a?worker=w", None).await.json()["id"]
        .as_i64()
        .unwrap();
    api.call("PATCH", &format!("/api/task/{id}"), Some(json!({})))
        .await;
    api.call("GET", "/api/task/12345", None).await;

    let r = api.call("GET", "/api/metrics", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = &r.text;
    assert!(text.contains("# HELP queue_tasks Number of tasks in each queue by status"));
    assert!(text.contains("# TYPE queue_tasks gauge"));
    let sample = |q: &str, s: &str| {
        let prefix = format!("queue_tasks{{namespace=\"app\",queue=\"{q}\",status=\"{s}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
            .to_string()
    };
    assert_eq!(sample("a", "new"), "2");
    assert_eq!(sample("a", "released"), "1");
    assert_eq!(sample("a", "retained"), "0");
    for s in ["new", "retained", "retry", "released", "failed", "expired"] {
        assert_eq!(sample("b", s), "0");
    }
    assert!(text.contains(r#"pgqueue_tasks_created_total{namespace="app",queue="a"} 3"#));
    assert!(text.contains(r#"pgqueue_tasks_retained_total{namespace="app",queue="a"} 1"#));
    assert!(text.contains(r#"pgqueue_tasks_released_total{namespace="app",queue="a"} 1"#));
    assert!(text.contains(
        r#"pgqueue_task_run_seconds_count{namespace="app",queue="a",status="released"} 1"#
    ));
    assert!(text.contains(
        r#"pgqueue_http_requests_total{method="GET",route="/task/{id}",status="404"} 1"#
    ));
    assert!(
        text.contains(r#"pgqueue_http_requests_total{method="POST",route="/task",status="201"} 3"#)
    );

    // A deleted queue disappears from the next scrape.
    api.call("DELETE", "/api/queue/b", None).await;
    let again = api.call("GET", "/api/metrics", None).await.text;
    assert!(!again.contains(r#"queue="b",status"#), "{again}");
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let api = api();
    let r = api.call("GET", "/api/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/api");
    for (verb, pattern) in ROUTES {
        let method = verb.as_str().to_lowercase();
        assert!(
            doc["paths"][pattern][&method].is_object(),
            "openapi.json lacks {method} {pattern}"
        );
    }
}
