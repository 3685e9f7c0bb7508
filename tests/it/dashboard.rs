//! The dashboard (`docs/dashboard.md`) in a real browser: headless Chromium, driven through
//! chromedriver, against the real `pgqueue run` binary on a fresh PostgreSQL database. Each
//! test clicks and reads the page as a user would and checks what the page shows against
//! what the API says; one test saves a screenshot of every page under `target/dashboard/`.
//!
//! Chromium and chromedriver are required (Debian: `apt-get install chromium
//! chromium-driver`): without them these tests fail, they never skip.

mod browser;

use browser::{Dash, POLL};
use fantoccini::Locator;
use pgqueue_domain::{Duration as WireDuration, Status, TickerMeta};
use serde_json::json;
use std::time::{Duration, Instant};

/// The element matching `css`, which must show up within 2 s of `start`.
async fn within_2s(d: &Dash, css: &str, start: Instant) -> fantoccini::elements::Element {
    loop {
        if let Ok(el) = d.page.find(Locator::Css(css)).await {
            return el;
        }
        let waited = start.elapsed();
        assert!(
            waited < Duration::from_secs(2),
            "{css}: not there after {waited:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn status_cell(queue: &str, status: &str) -> String {
    format!(r#"tr[data-testid="queue-row-{queue}"] [data-status="{status}"]"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_each_queues_counts_by_status() {
    let d = Dash::start().await;
    d.queue("emails", None).await;
    d.queue("reports", Some(1)).await;
    for i in 0..3 {
        d.task("emails", json!({"to": format!("user{i}@example.com")}))
            .await;
    }
    d.task("reports", json!({"month": "2026-11"})).await;
    d.task("reports", json!({"month": "2026-12"})).await;
    d.open("#/").await;
    for (queue, status, n) in [("emails", "new", "3"), ("reports", "new", "2")] {
        d.wait_text(&status_cell(queue, status), n).await;
    }
    for status in ["retained", "released", "failed"] {
        assert_eq!(d.text(&status_cell("emails", status)).await.unwrap(), "0");
    }
    // The counts follow what happens, without a reload.
    assert_eq!(d.work("reports", false).await.status, Status::Released);
    d.wait_text(&status_cell("reports", "released"), "1").await;
    d.wait_text(&status_cell("reports", "new"), "1").await;
    d.wait_text(
        r#"[data-testid="summary"]"#,
        "2 queues · 4 waiting · 0 running · 0 failed",
    )
    .await;
    // A row leads to its queue's page.
    d.click(r#"tr[data-testid="queue-row-emails"] [data-testid="queue-link"]"#)
        .await;
    d.wait_text(r#"[data-testid="tab-new"] .cnt"#, "3").await;
    assert!(
        d.page
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("#/queue/emails")
    );
    d.finish().await;
}

/// With `--auth` the page first asks for a token (nothing of the namespace shows before);
/// once given one it shows the queues and their live counts, and a wrong token is refused
/// with the form again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_the_page_asks_for_a_token_and_then_shows_the_queues() {
    let (d, token) = Dash::start_authed().await;
    d.queue("emails", None).await;
    d.task("emails", json!({"to": "a@example.com"})).await;
    d.open("#/").await;
    let form = within_2s(&d, r#"[data-testid="token-input"]"#, Instant::now()).await;
    assert!(
        d.page
            .find(Locator::Css(r#"tr[data-testid="queue-row-emails"]"#))
            .await
            .is_err(),
        "no queue is shown before a token is given"
    );
    form.send_keys("pgq_not-a-real-token").await.unwrap();
    d.click(r#"[data-testid="token-submit"]"#).await;
    let start = Instant::now();
    while !d
        .page
        .source()
        .await
        .unwrap()
        .contains("The server refused the token")
    {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a wrong token is not said to be refused"
        );
        tokio::time::sleep(POLL).await;
    }
    let form = d
        .page
        .find(Locator::Css(r#"[data-testid="token-input"]"#))
        .await
        .unwrap();
    form.clear().await.unwrap();
    form.send_keys(&token).await.unwrap();
    d.click(r#"[data-testid="token-submit"]"#).await;
    d.wait_text(&status_cell("emails", "new"), "1").await;
    d.wait_live().await;
    d.task("emails", json!({"to": "b@example.com"})).await;
    d.wait_text(&status_cell("emails", "new"), "2").await;
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_queue_from_its_page_stops_retains_and_resuming_restarts_them() {
    let d = Dash::start().await;
    d.queue("emails", None).await;
    let task = d.task("emails", json!({"to": "ada@example.com"})).await;
    d.open("#/queue/emails").await;
    d.wait_text(r#"[data-testid="queue-paused"]"#, "active")
        .await;
    d.click(r#"[data-testid="pause-queue"]"#).await;
    d.wait_text(r#"[data-testid="queue-paused"]"#, "paused")
        .await;
    assert!(d.api.get_queue("emails").await.unwrap().paused_at.is_some());
    let retained = d.api.retain_task("w", &["emails"]).await.unwrap();
    assert!(retained.is_none(), "a paused queue hands out nothing (204)");
    // The overview says so too.
    d.click(r#"[data-testid="nav-overview"]"#).await;
    d.wait_text(r#"tr[data-testid="queue-row-emails"] .pill"#, "paused")
        .await;
    d.page.back().await.unwrap();
    d.click(r#"[data-testid="resume-queue"]"#).await;
    d.wait_text(r#"[data-testid="queue-paused"]"#, "active")
        .await;
    assert!(d.api.get_queue("emails").await.unwrap().paused_at.is_none());
    let retained = d.api.retain_task("w", &["emails"]).await.unwrap();
    assert_eq!(retained.map(|t| t.id), Some(task.id));
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_failed_task_from_its_page_makes_it_new() {
    let d = Dash::start().await;
    d.queue("emails", Some(1)).await;
    let task = d.task("emails", json!({"to": "ada@example.com"})).await;
    let failed = d.work("emails", true).await;
    assert_eq!((failed.id, failed.status), (task.id, Status::Failed));
    d.open(&format!("#/task/{}", task.id)).await;
    d.wait_text(r#"[data-testid="task-status"]"#, "failed")
        .await;
    let error = d.text(r#"pre[data-testid="task-result"]"#).await.unwrap();
    assert!(error.contains("smtp: connection refused"), "{error}");
    d.click(r#"[data-testid="retry-task"]"#).await;
    d.wait_text(r#"[data-testid="task-status"]"#, "new").await;
    let now = d.api.get_task(task.id).await.unwrap();
    assert_eq!(now.status, Status::New);
    d.wait_text(r#"[data-testid="task-retries"]"#, &now.retries.to_string())
        .await;
    // And a worker gets it again.
    let again = d.api.retain_task("w", &["emails"]).await.unwrap();
    assert_eq!(again.map(|t| t.id), Some(task.id));
    d.wait_text(r#"[data-testid="task-status"]"#, "retained")
        .await;
    d.finish().await;
}

/// The failed page lists every queue's failures newest first, and its row button retries one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_page_shows_the_newest_failure_first() {
    let d = Dash::start().await;
    d.queue("emails", Some(1)).await;
    d.queue("images", Some(1)).await;
    let mut ids = Vec::new();
    for q in ["emails", "images", "emails"] {
        d.task(q, json!({"n": ids.len()})).await;
        ids.push(d.work(q, true).await.id);
    }
    d.open("#/failed").await;
    d.wait_count(r#"[data-testid="task-row"]"#, 3).await;
    let mut shown = Vec::new();
    for row in d
        .page
        .find_all(Locator::Css(r#"[data-testid="task-row"]"#))
        .await
        .unwrap()
    {
        let id = row.attr("data-task-id").await.unwrap().unwrap();
        shown.push(id.parse::<i64>().unwrap());
    }
    ids.reverse();
    assert_eq!(shown, ids, "newest first");
    d.click(r#"[data-testid="task-row"]:first-child [data-testid="retry-row"]"#)
        .await;
    d.wait_count(r#"[data-testid="task-row"]"#, 2).await;
    assert_eq!(d.api.get_task(ids[0]).await.unwrap().status, Status::New);
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_through_the_api_shows_in_the_live_feed_within_2s() {
    let d = Dash::start().await;
    d.queue("emails", None).await;
    d.open("#/").await;
    d.wait_live().await;
    let start = Instant::now();
    let task = d.task("emails", json!({"to": "ada@example.com"})).await;
    let row = |event: &str| {
        format!(
            r#"[data-testid="live-feed"] > [data-testid="event"]:first-child[data-task-id="{}"][data-event="{event}"]"#,
            task.id
        )
    };
    let el = within_2s(&d, &row("created"), start).await;
    let text = el.text().await.unwrap();
    for part in ["created", &format!("#{}", task.id), "emails", "new"] {
        assert!(text.contains(part), "the feed row {text:?} lacks {part:?}");
    }
    // Its next change arrives the same way, above it.
    let start = Instant::now();
    d.api.retain_task("w", &["emails"]).await.unwrap().unwrap();
    let el = within_2s(&d, &row("retained"), start).await;
    assert!(el.text().await.unwrap().contains("retained"));
    d.wait_count(r#"[data-testid="live-feed"] [data-testid="event"]"#, 2)
        .await;
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_a_payload_is_shown_as_text_and_never_runs() {
    let d = Dash::start().await;
    d.queue("emails", None).await;
    let evil = r#"<script>alert(1)</script><script>window.__xss=1</script><img src=x onerror="window.__xss=1">"#;
    let payload = json!({"subject": evil});
    let task = d.task("emails", payload.clone()).await;
    d.open(&format!("#/task/{}", task.id)).await;
    let pre = r#"pre[data-testid="task-payload"]"#;
    d.wait_text(pre, &serde_json::to_string_pretty(&payload).unwrap())
        .await;
    // As text in the queue's list too.
    d.open("#/queue/emails").await;
    let cell = format!(
        r#"tr[data-testid="task-row"][data-task-id="{}"] td.clip"#,
        task.id
    );
    d.wait_count(&cell, 2).await; // payload, result
    let shown = d.text(&cell).await.unwrap();
    assert!(
        shown.starts_with(r#"{"subject":"<script>alert(1)</script>"#),
        "{shown}"
    );
    // Give a broken image the time to fail: one of our own, loaded and failed.
    let probe = "const done = arguments[arguments.length - 1]; const i = new Image(); \
                 i.onerror = () => done(true); i.onload = () => done(false); i.src = 'x?probe';";
    assert_eq!(
        d.page.execute_async(probe, vec![]).await.unwrap(),
        json!(true)
    );
    match d.page.get_alert_text().await {
        Err(e) if e.is_no_such_alert() => {}
        other => panic!("an alert is open: {other:?}"),
    }
    let clean = d.page.execute("return window.__xss === undefined", vec![]);
    assert_eq!(
        clean.await.unwrap(),
        json!(true),
        "the payload's script ran"
    );
    let injected = d
        .page
        .find_all(Locator::Css(r#"img[src="x"], main script"#));
    assert!(
        injected.await.unwrap().is_empty(),
        "the payload became elements"
    );
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_saved_as_a_screenshot() {
    let d = Dash::start().await;
    // The overview is open first, so that its live feed and throughput see what follows.
    d.open("#/").await;
    d.wait_live().await;
    d.queue("emails", None).await;
    d.queue("reports", Some(1)).await;
    d.queue("webhooks", None).await;
    for to in ["ada", "grace", "edsger", "barbara", "donald"] {
        d.task(
            "emails",
            json!({"to": format!("{to}@example.com"), "template": "welcome"}),
        )
        .await;
    }
    for month in ["2026-09", "2026-10", "2026-11", "2026-12"] {
        d.task("reports", json!({"report": "monthly", "month": month}))
            .await;
    }
    for hook in ["order.created", "order.paid"] {
        d.task(
            "webhooks",
            json!({"url": "https://example.com/hook", "event": hook}),
        )
        .await;
    }
    for _ in 0..2 {
        d.work("emails", false).await;
    }
    d.work("reports", false).await;
    let failed = d.work("reports", true).await;
    assert_eq!(failed.status, Status::Failed);
    d.api
        .retain_task("w", &["webhooks"])
        .await
        .unwrap()
        .unwrap();
    d.api.pause_queue("webhooks", true).await.unwrap();
    let nightly = TickerMeta {
        ticker: Some("nightly-report".into()),
        cron: Some("0 3 * * *".into()),
        queue: Some(Some("reports".into())),
        payload: Some(json!({"report": "daily"})),
        ..Default::default()
    };
    d.api.create_ticker(&nightly).await.unwrap();
    let heartbeat = TickerMeta {
        ticker: Some("heartbeat".into()),
        interval: Some(WireDuration::from_secs(600)),
        ..Default::default()
    };
    d.api.create_ticker(&heartbeat).await.unwrap();

    let mut saved = Vec::new();
    for (queue, status, n) in [
        ("emails", "new", "3"),
        ("emails", "released", "2"),
        ("reports", "failed", "1"),
        ("webhooks", "retained", "1"),
    ] {
        d.wait_text(&status_cell(queue, status), n).await;
    }
    d.wait_text(r#"tr[data-testid="queue-row-webhooks"] .pill"#, "paused")
        .await;
    let failed_event = format!(
        r#"[data-testid="live-feed"] [data-task-id="{}"][data-event="failed"]"#,
        failed.id
    );
    d.wait_count(&failed_event, 1).await;
    // "oldest waiting" is looked up at most every 5 s.
    d.wait_count(r#"tr[data-testid="queue-row-emails"] time[data-age]"#, 1)
        .await;
    saved.push(d.screenshot("overview").await);

    d.click(r#"tr[data-testid="queue-row-reports"] [data-testid="queue-link"]"#)
        .await;
    d.wait_text(r#"[data-testid="tab-failed"] .cnt"#, "1").await;
    d.wait_count(r#"tr[data-testid="task-row"]"#, 4).await;
    saved.push(d.screenshot("queue").await);

    d.click(&format!(
        r##"tr[data-task-id="{}"] a[href^="#/task/"]"##,
        failed.id
    ))
    .await;
    d.wait_text(r#"[data-testid="task-status"]"#, "failed")
        .await;
    saved.push(d.screenshot("task").await);

    d.click(r#"[data-testid="nav-failed"]"#).await;
    d.wait_count(
        &format!(
            r#"tr[data-testid="task-row"][data-task-id="{}"]"#,
            failed.id
        ),
        1,
    )
    .await;
    saved.push(d.screenshot("failed").await);

    d.click(r#"[data-testid="nav-tickers"]"#).await;
    d.wait_count(r#"tr[data-testid^="ticker-row-"]"#, 2).await;
    d.wait_text(
        r#"tr[data-testid="ticker-row-nightly-report"] td.mono"#,
        "0 3 * * *",
    )
    .await;
    saved.push(d.screenshot("tickers").await);
    for path in &saved {
        eprintln!("dashboard screenshot: {}", path.display());
    }
    d.finish().await;
}
