//! The end of a task: expiry, clean-up of one queue now, and clean-up after retention.

use super::*;

/// Waiting tasks read as expired from dies_at on, without a write, and are never retained.
pub async fn expiry_is_derived_and_final(s: Subject) {
    let m = s.manager("expiry");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    let done = task(&m, "q", json!(2)).await;
    m.next_tasks("w", &[], 2).await.unwrap();
    m.release_task(done.id, Outcome::done()).await.unwrap();
    let waiting = task(&m, "q", json!(3)).await;
    s.advance(secs(59));
    assert_eq!(m.get_task(waiting.id).await.unwrap().status(), Status::New);
    s.advance(secs(1));
    assert_eq!(
        m.get_task(waiting.id).await.unwrap().status(),
        Status::Expired
    );
    assert_eq!(
        m.get_task(t.id).await.unwrap().status(),
        Status::Expired,
        "retained past dies_at reads expired"
    );
    assert_eq!(
        m.get_task(done.id).await.unwrap().status(),
        Status::Released
    );
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    let expired = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Expired),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        expired.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t.id, waiting.id]
    );
}

/// `clean_queue` deletes the queue's released, failed and expired tasks now and returns them.
pub async fn clean_queue_removes_ended_tasks_now(s: Subject) {
    let m = s.manager("clean");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_secs(60)),
        retries: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    queue(&m, "other").await;
    let ok = task(&m, "q", json!("ok")).await;
    let bad = task(&m, "q", json!("bad")).await;
    m.next_tasks("w", &["q"], 2).await.unwrap();
    m.release_task(ok.id, Outcome::done()).await.unwrap();
    m.release_task(bad.id, fail(json!("x"))).await.unwrap();
    let old = task(&m, "q", json!("old")).await;
    s.advance(secs(30));
    let young = task(&m, "q", json!("young")).await;
    let elsewhere = task(&m, "other", json!(1)).await;
    m.next_task("w", &["other"]).await.unwrap();
    m.release_task(elsewhere.id, Outcome::done()).await.unwrap();
    s.advance(secs(30));
    let cleaned = m.clean_queue("q").await.unwrap();
    assert_eq!(
        cleaned.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ok.id, bad.id, old.id]
    );
    assert_eq!(
        cleaned.iter().map(|t| t.status()).collect::<Vec<_>>(),
        vec![Status::Released, Status::Failed, Status::Expired]
    );
    assert_eq!(m.get_task(young.id).await.unwrap().status(), Status::New);
    assert!(
        m.get_task(elsewhere.id).await.is_ok(),
        "other queues untouched"
    );
    assert!(m.clean_queue("ghost").await.unwrap().is_empty());
}

/// Background clean-up deletes ended tasks once their queue's ttl has passed since the end,
/// in every namespace, in bounded batches.
pub async fn clean_up_waits_for_retention(s: Subject) {
    let a = s.manager("ns-a");
    let b = s.manager("ns-b");
    for m in [&a, &b] {
        m.create_queue(QueueMeta {
            queue: Some("q".into()),
            ttl: Some(Duration::from_mins(10)),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let done = task(&a, "q", json!(1)).await;
    a.next_task("w", &[]).await.unwrap();
    s.advance(mins(1));
    a.release_task(done.id, Outcome::done()).await.unwrap();
    let expiring: Vec<Task> = b
        .create_tasks("q", vec![TaskMeta::new(json!(0)); 5])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.into_task())
        .collect::<Vec<_>>();
    let alive = task(&a, "q", json!(2)).await;
    s.advance(mins(10) - secs(1));
    assert_eq!(
        s.store.clean_up(100).await.unwrap(),
        0,
        "released 1 minute in; kept for 10"
    );
    s.advance(secs(1));
    assert_eq!(s.store.clean_up(100).await.unwrap(), 1);
    assert!(a.get_task(done.id).await.is_err());
    s.advance(mins(9));
    // b's tasks expired at 10 min and are kept until 20 min.
    assert_eq!(s.store.clean_up(100).await.unwrap(), 0);
    s.advance(mins(1));
    assert_eq!(s.store.clean_up(2).await.unwrap(), 2, "bounded batch");
    assert_eq!(
        s.store.clean_up(100).await.unwrap(),
        4,
        "the rest of b's and a's expired one"
    );
    assert!(b.get_task(expiring[4].id).await.is_err());
    assert!(a.get_task(alive.id).await.is_err());
}
