//! Operating the queue: cancel, retry and redrive, delete and purge, pause and resume; every
//! transition and refusal, and namespaces that cannot reach each other's tasks.

use super::*;

fn meta(payload: serde_json::Value) -> TaskMeta {
    TaskMeta::new(payload)
}

/// Cancel: a waiting task ends now; a retained one is asked to stop, learns it at its
/// heartbeat, and a failure release (or its lease running out) ends it cancelled, while a
/// success release still ends it released. Ended tasks are refused.
pub async fn cancel_ends_waiting_tasks_and_asks_retained_ones_to_stop(s: Subject) {
    let m = s.manager("cancel");
    queue(&m, "q").await;
    let waiting = task(&m, "q", json!(1)).await;
    let c = m.cancel_task(waiting.id).await.unwrap();
    assert_eq!(
        (c.status(), c.finished_at()),
        (Status::Cancelled, Some(s.now()))
    );
    assert_eq!(
        m.cancel_task(waiting.id).await,
        Err(Error::Conflict("task has ended".into()))
    );
    assert_eq!(
        m.next_task("w", &["q"]).await.unwrap(),
        None,
        "cancelled tasks are not retained"
    );

    for (ending, expected) in [
        ("fail", Status::Cancelled),
        ("succeed", Status::Released),
        ("lapse", Status::Cancelled),
    ] {
        let t = task(&m, "q", json!(ending)).await;
        let held = m.next_task("w", &["q"]).await.unwrap().unwrap();
        assert_eq!(held.id, t.id);
        let asked = m.cancel_task(t.id).await.unwrap();
        assert_eq!(
            (asked.status(), asked.cancel_requested_at()),
            (Status::Retained, Some(s.now()))
        );
        assert_eq!(m.heartbeat(t.id, "w").await, Err(Error::Cancelled));
        let end = match ending {
            "fail" => m
                .release_task(t.id, fail(json!("stopped")).by(worker("w")))
                .await
                .unwrap(),
            "succeed" => m
                .release_task(t.id, Outcome::done().by(worker("w")))
                .await
                .unwrap(),
            _ => {
                s.advance(mins(5));
                s.store.rescue_leases(10).await.unwrap();
                m.get_task(t.id).await.unwrap()
            }
        };
        assert_eq!(
            (end.status(), end.cancel_requested_at()),
            (expected, None),
            "{ending}"
        );
    }
    assert!(matches!(
        m.cancel_task(999_999).await,
        Err(Error::NotFound(_))
    ));
}

/// Retry: failed, expired and cancelled tasks become new with the queue's attempts; others
/// are refused; a key held by another waiting task refuses it.
pub async fn retry_brings_ended_tasks_back(s: Subject) {
    let m = s.manager("retry");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        retries: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    assert_eq!(
        m.retry_task(t.id).await,
        Err(Error::Conflict("task is not ended".into()))
    );
    m.next_task("w", &["q"]).await.unwrap().unwrap();
    let failed = m.release_task(t.id, fail(json!("boom"))).await.unwrap();
    assert_eq!(failed.status(), Status::Failed);
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(4),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    s.advance(mins(1));
    let again = m.retry_task(t.id).await.unwrap();
    assert_eq!(
        (
            again.status(),
            again.retries(),
            again.result().cloned(),
            again.worker()
        ),
        (Status::New, 4, None, None)
    );
    assert_eq!(again.dies_at(), s.now() + TimeDelta::hours(1));
    assert_eq!(m.next_task("w", &["q"]).await.unwrap().unwrap().id, t.id);
    let released = m.release_task(t.id, Outcome::done()).await.unwrap();
    assert_eq!(released.status(), Status::Released);
    assert!(matches!(m.retry_task(t.id).await, Err(Error::Conflict(_))));
    // Expired and cancelled tasks come back too.
    let old = task(&m, "q", json!("old")).await;
    s.advance(TimeDelta::hours(2));
    assert_eq!(m.retry_task(old.id).await.unwrap().status(), Status::New);
    let stopped = task(&m, "q", json!("stopped")).await;
    m.cancel_task(stopped.id).await.unwrap();
    assert_eq!(
        m.retry_task(stopped.id).await.unwrap().status(),
        Status::New
    );
    // A key another waiting task holds refuses the retry.
    let keyed = m
        .create_task("q", meta(json!("k1")).unique_key("k"))
        .await
        .unwrap()
        .into_task();
    m.cancel_task(keyed.id).await.unwrap();
    let holder = m
        .create_task("q", meta(json!("k2")).unique_key("k"))
        .await
        .unwrap();
    assert!(holder.is_new());
    assert!(matches!(
        m.retry_task(keyed.id).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.retry_task(999_999).await,
        Err(Error::NotFound(_))
    ));
}

/// Redrive retries the queue's tasks in the given statuses, oldest first, at most `limit`,
/// skipping tasks whose key another task holds; 10,000 in one call.
pub async fn redrive_retries_a_queues_ended_tasks(s: Subject) {
    let m = s.manager("redrive");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        retries: Some(0),
        ..Default::default()
    })
    .await
    .unwrap();
    let metas: Vec<TaskMeta> = (0..10_000).map(|i| meta(json!(i))).collect();
    for chunk in metas.chunks(5_000) {
        m.create_tasks("q", chunk.to_vec()).await.unwrap();
    }
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(m.retry_tasks("q", &[], Some(3)).await.unwrap(), 3);
    let news = TaskFilter {
        queue: Some(pgqueue_domain::QueueName::parse("q").unwrap()),
        status: Some(Status::New),
        page: Page::new(None, Some(5)),
    };
    let listed = m.list_tasks(&news).await.unwrap();
    assert_eq!(listed.count, 3);
    assert_eq!(
        listed
            .items
            .iter()
            .map(|t| t.payload.clone())
            .collect::<Vec<_>>(),
        [json!(0), json!(1), json!(2)]
    );
    assert_eq!(
        m.retry_tasks("q", &[Status::Failed], None).await.unwrap(),
        9_997
    );
    assert_eq!(m.list_tasks(&news).await.unwrap().count, 10_000);
    assert_eq!(
        m.retry_tasks("q", &[Status::Failed], None).await.unwrap(),
        0
    );
    assert!(matches!(
        m.retry_tasks("q", &[Status::New], None).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.retry_tasks("ghost", &[], None).await,
        Err(Error::NotFound(_))
    ));
    // Keys: of two cancelled tasks with one key, the older is retried, the other skipped.
    queue(&m, "keys").await;
    let a = m
        .create_task("keys", meta(json!("a")).unique_key("k"))
        .await
        .unwrap()
        .into_task();
    m.cancel_task(a.id).await.unwrap();
    let b = m
        .create_task("keys", meta(json!("b")).unique_key("k"))
        .await
        .unwrap()
        .into_task();
    m.cancel_task(b.id).await.unwrap();
    assert_eq!(
        m.retry_tasks("keys", &[Status::Cancelled], None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(m.get_task(a.id).await.unwrap().status(), Status::New);
    assert_eq!(m.get_task(b.id).await.unwrap().status(), Status::Cancelled);
}

/// Delete removes a task no worker holds; purge removes tasks by status, never retained
/// ones.
pub async fn delete_and_purge_never_touch_retained_tasks(s: Subject) {
    let m = s.manager("purge");
    queue(&m, "a").await;
    queue(&m, "b").await;
    let t = task(&m, "a", json!(1)).await;
    assert_eq!(m.delete_task(t.id).await.unwrap().id, t.id);
    assert!(matches!(m.get_task(t.id).await, Err(Error::NotFound(_))));
    assert!(matches!(m.delete_task(t.id).await, Err(Error::NotFound(_))));
    let held = task(&m, "a", json!(2)).await;
    m.next_task("w", &["a"]).await.unwrap().unwrap();
    assert_eq!(
        m.delete_task(held.id).await,
        Err(Error::Conflict("task is retained: cancel it first".into()))
    );
    for q in ["a", "b"] {
        for i in 0..3 {
            task(&m, q, json!(i)).await;
        }
    }
    let one = task(&m, "b", json!("cancelled")).await;
    m.cancel_task(one.id).await.unwrap();
    assert_eq!(m.purge_tasks(Some("a"), &[Status::New]).await.unwrap(), 3);
    assert_eq!(
        m.purge_tasks(None, &[Status::New, Status::Cancelled])
            .await
            .unwrap(),
        4
    );
    assert!(matches!(
        m.purge_tasks(None, &[Status::Retained]).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.purge_tasks(None, &[]).await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(
        m.get_task(held.id).await.unwrap().status(),
        Status::Retained
    );
}

/// A paused queue is skipped by every retain, also through "any queue"; pausing is
/// idempotent; resuming wakes sleepers. A paused ticker does not fire; resumed, it fires
/// once.
pub async fn paused_queues_and_tickers_wait(s: Subject) {
    let m = s.manager("pause");
    queue(&m, "p").await;
    queue(&m, "open").await;
    let t = task(&m, "p", json!("held back")).await;
    let paused = m.pause_queue("p").await.unwrap();
    assert_eq!(paused.paused_at, Some(s.now()));
    s.advance(secs(5));
    assert_eq!(
        m.pause_queue("p").await.unwrap().paused_at,
        paused.paused_at
    );
    assert_eq!(m.next_task("w", &["p"]).await.unwrap(), None);
    assert_eq!(m.next_task_from("w", "p").await.unwrap(), None);
    let other = task(&m, "open", json!("open")).await;
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, other.id);
    assert_eq!(
        m.next_task("w", &[]).await.unwrap(),
        None,
        "any queue skips it too"
    );
    let more = task(&m, "open", json!("open again")).await;
    assert_eq!(
        m.next_tasks("w", &["p", "open"], 2)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        vec![more.id],
        "a claim naming it among others skips it too"
    );
    assert_eq!(m.get_queue("p").await.unwrap().paused_at, paused.paused_at);
    let mut wakeups = s.store.signal().subscribe();
    let resumed = m.resume_queue("p").await.unwrap();
    assert_eq!(resumed.paused_at, None);
    let w = tokio::time::timeout(std::time::Duration::from_secs(5), wakeups.recv()).await;
    assert!(
        matches!(w, Ok(Ok(Wakeup::Task { ref queue, .. })) if queue.as_str() == "p"),
        "resume wakes: {w:?}"
    );
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, t.id);
    assert!(matches!(
        m.pause_queue("ghost").await,
        Err(Error::NotFound(_))
    ));

    m.create_ticker(TickerMeta {
        ticker: Some("beat".into()),
        interval: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(m.next_ticker().await.unwrap().is_some());
    m.pause_ticker("beat").await.unwrap();
    s.advance(mins(5));
    assert_eq!(
        m.next_ticker().await.unwrap(),
        None,
        "a paused ticker does not fire"
    );
    assert_eq!(
        s.store
            .next_maturity(&TickerScope::Deliveries(m.namespace().clone()))
            .await
            .unwrap(),
        None
    );
    m.resume_ticker("beat").await.unwrap();
    assert!(
        m.next_ticker().await.unwrap().is_some(),
        "it fires once on resume"
    );
    assert_eq!(m.next_ticker().await.unwrap(), None);
}

/// Namespace B reaches none of A's tasks, queues or tickers through these operations.
pub async fn operations_stay_in_their_namespace(s: Subject) {
    let a = s.manager("ops-a");
    let b = s.manager("ops-b");
    queue(&a, "q").await;
    a.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&a, "q", json!(1)).await;
    assert!(matches!(b.cancel_task(t.id).await, Err(Error::NotFound(_))));
    assert!(matches!(b.retry_task(t.id).await, Err(Error::NotFound(_))));
    assert!(matches!(b.delete_task(t.id).await, Err(Error::NotFound(_))));
    assert!(matches!(b.pause_queue("q").await, Err(Error::NotFound(_))));
    assert!(matches!(b.pause_ticker("t").await, Err(Error::NotFound(_))));
    assert!(matches!(
        b.retry_tasks("q", &[], None).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(b.purge_tasks(None, &[Status::New]).await.unwrap(), 0);
    let still = a.get_task(t.id).await.unwrap();
    assert_eq!(still.status(), Status::New);
    assert_eq!(a.get_queue("q").await.unwrap().paused_at, None);
}
