use super::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn ticker_crud_and_list() {
    let api = api();
    let t = api
        .call(
            "POST",
            "/api/ticker",
            Some(json!({"ticker":"Hourly","period":"1h","payload":{"k":1}})),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    assert_eq!(
        t.json(),
        json!({"ticker":"hourly","payload":{"k":1},"interval":3_600_000_000_000i64,"namespace":"app"})
    );
    api.call("POST", "/api/ticker", Some(json!({"ticker":"hourly"})))
        .await
        .assert_error(409, "ticker already exists");
    api.call("POST", "/api/ticker", Some(json!({"ticker":"next"})))
        .await
        .assert_error(400, "next");
    api.call("POST", "/api/ticker", Some(json!({"payload":1})))
        .await
        .assert_error(400, "missing ticker name");
    api.call(
        "POST",
        "/api/ticker",
        Some(json!({"ticker":"t","queue":"ghost"})),
    )
    .await
    .assert_error(404, "not found");
    api.call(
        "POST",
        "/api/ticker",
        Some(json!({"ticker":"t","interval":0})),
    )
    .await
    .assert_error(400, "interval");

    assert_eq!(
        api.call("GET", "/api/ticker/hourly", None).await.json()["interval"],
        3_600_000_000_000i64
    );
    let up = api
        .call(
            "PATCH",
            "/api/ticker/hourly",
            Some(json!({"interval":"2m"})),
        )
        .await;
    assert_eq!(up.json()["interval"], 120_000_000_000i64);
    api.call("PATCH", "/api/ticker/hourly", Some(json!({})))
        .await
        .assert_error(400, "no patch values");
    api.call("PATCH", "/api/ticker/ghost", Some(json!({"payload":1})))
        .await
        .assert_error(404, "not found");

    let list = api.call("GET", "/api/ticker", None).await;
    assert_eq!(list.json()["count"], 1);
    api.call("GET", "/api/ticker?limit=x", None)
        .await
        .assert_error(400, "invalid limit");

    let del = api.call("DELETE", "/api/ticker/hourly", None).await;
    assert_eq!(del.json()["ticker"], "hourly");
    api.call("GET", "/api/ticker/hourly", None)
        .await
        .assert_error(404, "not found");
    api.call("DELETE", "/api/ticker/next", None)
        .await
        .assert_error(405, "not allowed");
}

/// The stream pings at once, delivers a matured ticker as `event: ticker` with its compact
/// JSON, and ends when the server shuts down (or the test body would never complete).
#[tokio::test]
async fn the_sse_stream_delivers_tickers_and_ends_on_shutdown() {
    for (path, accept) in [
        ("/api/ticker/next", None),
        ("/api/ticker", Some("text/event-stream")),
    ] {
        let api = api();
        api.call(
            "POST",
            "/api/ticker",
            Some(json!({"ticker":"t","payload":[1]})),
        )
        .await;
        let stop = api.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = stop.send(true);
        });
        let mut req = warp::test::request().method("GET").path(path);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let r = tokio::time::timeout(Duration::from_secs(5), api.send(req))
            .await
            .expect("the stream ends on shutdown");
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "text/event-stream");
        assert_eq!(r.headers["cache-control"], "no-cache");
        assert!(r.text.starts_with("event: ping\n"), "{}", r.text);
        let frame = r
            .text
            .split("\n\n")
            .find(|f| f.starts_with("event: ticker"))
            .unwrap_or_else(|| panic!("no ticker frame in {:?}", r.text));
        let data = frame.strip_prefix("event: ticker\ndata: ").unwrap();
        let ticker: Value = serde_json::from_str(data).unwrap();
        assert_eq!(ticker["ticker"], "t");
        assert_eq!(ticker["payload"], json!([1]));
        assert!(ticker.get("timestamp").is_some(), "claimed: {ticker}");
        assert!(!data.contains(' '), "compact JSON: {data}");
        // Claimed once: the stored ticker carries the claim.
        let stored = api.call("GET", "/api/ticker/t", None).await.json();
        assert_eq!(stored["timestamp"], ticker["timestamp"]);
    }
}
