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
        json!({"ticker":"hourly","payload":{"k":1},"interval":3_600_000_000_000i64,"namespace":"app",
               "next_at":"2026-03-01T12:00:00Z"})
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

/// Cron tickers over HTTP: the wire shape, refusals naming the field, and the schedule.
#[tokio::test]
async fn cron_tickers_and_their_schedule() {
    let api = api();
    let t = api
        .call(
            "POST",
            "/api/ticker",
            Some(json!({"ticker":"nightly","cron":"30 2 * * *","timezone":"Europe/Berlin"})),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let body = t.json();
    assert_eq!(
        (&body["cron"], &body["timezone"], body.get("interval")),
        (&json!("30 2 * * *"), &json!("Europe/Berlin"), None)
    );
    // The api's clock is pinned at 2026-03-01T12:00:00Z; 02:30 CET is 01:30 UTC.
    assert_eq!(body["next_at"], "2026-03-02T01:30:00Z");
    api.call(
        "POST",
        "/api/ticker",
        Some(json!({"ticker":"both","cron":"* * * * *","interval":"1m"})),
    )
    .await
    .assert_error(
        400,
        "invalid cron: a ticker has either an interval or a cron schedule",
    );
    api.call(
        "POST",
        "/api/ticker",
        Some(json!({"ticker":"bad","cron":"* * 32 * *"})),
    )
    .await
    .assert_error(400, "invalid cron: \"* * 32 * *\"");
    api.call(
        "POST",
        "/api/ticker",
        Some(json!({"ticker":"bad","cron":"@daily","timezone":"Europe/Atlantis"})),
    )
    .await
    .assert_error(
        400,
        "invalid timezone: unknown time zone \"Europe/Atlantis\"",
    );

    let s = api
        .call("GET", "/api/ticker/nightly/schedule?n=2", None)
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(
        s.json(),
        json!({"count":2,"body":["2026-03-02T01:30:00Z","2026-03-03T01:30:00Z"]})
    );
    let s = api
        .call(
            "GET",
            "/api/ticker/nightly/schedule?from=2026-03-29T00:00:00Z&n=2",
            None,
        )
        .await;
    // Spring forward in Berlin: 02:30 does not exist on the 29th and fires at 03:00 CEST.
    assert_eq!(
        s.json()["body"],
        json!(["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
    );
    assert_eq!(
        api.call("GET", "/api/ticker/nightly/schedule", None)
            .await
            .json()["count"],
        5
    );
    api.call("GET", "/api/ticker/nightly/schedule?n=0", None)
        .await
        .assert_error(400, "invalid n: must be between 1 and 100, got 0");
    api.call("GET", "/api/ticker/nightly/schedule?n=101", None)
        .await
        .assert_error(400, "invalid n");
    api.call("GET", "/api/ticker/nightly/schedule?from=yesterday", None)
        .await
        .assert_error(400, "invalid from \"yesterday\"");
    api.call("GET", "/api/ticker/ghost/schedule", None)
        .await
        .assert_error(404, "not found");
    api.call("POST", "/api/ticker/nightly/schedule", None)
        .await
        .assert_error(405, "not allowed");
}
