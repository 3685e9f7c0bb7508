//! Ending attempts: success, failure and backoff, refusals, fencing, heartbeats, lease rescue.

use super::*;

/// Success: released, finished_at = now, result stored.
pub async fn release_success(s: Subject) {
    let m = s.manager("ok");
    queue(&m, "q").await;
    let t = task(&m, "q", json!(1)).await;
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(3));
    let done = m
        .release_task(t.id, Outcome::success(Some(json!({"sent": true}))).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (done.status(), done.finished_at(), done.result().cloned()),
        (Status::Released, Some(s.now()), Some(json!({"sent": true})))
    );
    assert_eq!(done.retries(), 3);
    assert_eq!(m.get_task(t.id).await.unwrap(), done);
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap();
    assert_eq!(
        m.release_task(t2.id, Outcome::done())
            .await
            .unwrap()
            .result()
            .cloned(),
        None
    );
}

/// Defaults (3 retries, 2 min): waits of 2 then 8 minutes, then failed; errors stored exactly.
pub async fn release_failure_backs_off_then_fails(s: Subject) {
    let m = s.manager("backoff");
    queue(&m, "q").await;
    let t = task(&m, "q", json!(1)).await;
    let error = json!({"error": "smtp down", "code": 451, "nested": [1, {"x": null}]});
    m.next_task("w", &[]).await.unwrap().unwrap();
    let r1 = m.release_task(t.id, fail(error.clone())).await.unwrap();
    assert_eq!(
        (r1.status(), r1.retries(), r1.result().cloned()),
        (Status::Retry, 2, Some(error.clone()))
    );
    assert_eq!(
        (r1.delayed_at(), r1.started_at()),
        (Some(s.now() + mins(2)), None)
    );
    s.advance(mins(2) - secs(1));
    assert_eq!(
        m.next_task("w", &[]).await.unwrap(),
        None,
        "still backing off"
    );
    s.advance(secs(1));
    m.next_task("w", &[])
        .await
        .unwrap()
        .expect("due after 2 minutes");
    let r2 = m.release_task(t.id, fail(json!("again"))).await.unwrap();
    assert_eq!(
        (r2.status(), r2.retries(), r2.delayed_at()),
        (Status::Retry, 1, Some(s.now() + mins(8)))
    );
    s.advance(mins(8));
    m.next_task("w", &[])
        .await
        .unwrap()
        .expect("due after 8 minutes");
    let r3 = m.release_task(t.id, fail(json!("last"))).await.unwrap();
    assert_eq!(
        (r3.status(), r3.retries(), r3.finished_at()),
        (Status::Failed, 0, Some(s.now()))
    );
    assert_eq!(r3.result().cloned(), Some(json!("last")));
    s.advance(TimeDelta::hours(1));
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    assert_eq!(
        m.get_task(t.id).await.unwrap().status(),
        Status::Failed,
        "failed never turns expired"
    );
}

/// Unknown → not found; not retained (new, finished, expired while new) → conflict; a retained
/// task past dies_at may still be released.
pub async fn release_is_refused_unless_retained(s: Subject) {
    let m = s.manager("refuse");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_mins(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(matches!(
        m.release_task(999_999, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
    let t = task(&m, "q", json!(1)).await;
    assert_eq!(
        m.release_task(t.id, Outcome::done()).await.unwrap_err(),
        Error::Conflict("task is not retained".into())
    );
    s.advance(mins(10));
    assert_eq!(m.get_task(t.id).await.unwrap().status(), Status::Expired);
    assert!(matches!(
        m.release_task(t.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(mins(11));
    assert_eq!(m.get_task(t2.id).await.unwrap().status(), Status::Expired);
    assert_eq!(
        m.release_task(t2.id, Outcome::done())
            .await
            .unwrap()
            .status(),
        Status::Released
    );
    assert!(matches!(
        m.release_task(t2.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
}

/// A release or heartbeat naming another worker is refused and changes nothing.
pub async fn fencing_refuses_other_workers(s: Subject) {
    let m = s.manager("fence");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(30)),
        retry_delay: Some(Duration::ZERO),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    let held = m.next_task("a", &[]).await.unwrap().unwrap();
    let refused = m.release_task(t.id, Outcome::done().by(worker("b"))).await;
    assert_eq!(
        refused.unwrap_err(),
        Error::Conflict("task is not retained by worker \"b\"".into())
    );
    assert!(matches!(
        m.heartbeat(t.id, "b").await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(m.get_task(t.id).await.unwrap(), held);
    // a's lease passes, the task is rescued and retained by b; a's late release is refused.
    s.advance(secs(30));
    assert_eq!(s.store.rescue_leases(100).await.unwrap().len(), 1);
    let b_holds = m.next_task("b", &[]).await.unwrap().unwrap();
    assert_eq!(b_holds.id, t.id);
    assert!(matches!(
        m.release_task(t.id, Outcome::done().by(worker("a"))).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(m.get_task(t.id).await.unwrap(), b_holds);
    let done = m
        .release_task(
            t.id,
            Outcome::success(Some(json!("b"))).unwrap().by(worker("b")),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), Status::Released);
}

/// Heartbeats push the lease to now + lease; rescue waits for it.
pub async fn heartbeat_extends_the_lease(s: Subject) {
    let m = s.manager("beat");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    assert!(matches!(
        m.heartbeat(t.id, "w").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.heartbeat(424_242, "w").await,
        Err(Error::NotFound(_))
    ));
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(50));
    let beat = m.heartbeat(t.id, "w").await.unwrap();
    assert_eq!(
        (beat.lease_expires_at(), beat.status()),
        (Some(s.now() + secs(60)), Status::Retained)
    );
    s.advance(secs(50));
    assert!(
        s.store.rescue_leases(100).await.unwrap().is_empty(),
        "the heartbeat kept it"
    );
    assert_eq!(m.get_task(t.id).await.unwrap().status(), Status::Retained);
}

/// A passed lease counts as a failed attempt with {"error":"lease expired"} and backs off;
/// the last attempt fails; an expired task is left expired.
pub async fn lease_rescue_counts_a_failed_attempt(s: Subject) {
    let m = s.manager("rescue");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(10)),
        retries: Some(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    m.next_task("w", &[]).await.unwrap();
    s.advance(secs(9));
    assert!(s.store.rescue_leases(100).await.unwrap().is_empty());
    s.advance(secs(1));
    let rescued = s.store.rescue_leases(100).await.unwrap();
    assert_eq!(rescued.len(), 1);
    let r = &rescued[0];
    assert_eq!((r.id, r.status(), r.retries()), (t.id, Status::Retry, 1));
    assert_eq!(
        (r.result().cloned(), r.delayed_at()),
        (
            Some(json!({"error": "lease expired"})),
            Some(s.now() + mins(2))
        )
    );
    assert_eq!(m.get_task(t.id).await.unwrap(), *r);
    s.advance(mins(2));
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(secs(10));
    let last = s.store.rescue_leases(100).await.unwrap();
    assert_eq!(
        (last[0].status(), last[0].finished_at()),
        (Status::Failed, Some(s.now()))
    );
    // A retained task whose dies_at passed stays expired: no rescue, no new attempt.
    m.update_queue(
        "q",
        QueueMeta {
            ttl: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let t2 = task(&m, "q", json!(2)).await;
    m.next_task("w", &[]).await.unwrap().unwrap();
    s.advance(secs(20));
    assert!(s.store.rescue_leases(100).await.unwrap().is_empty());
    assert_eq!(m.get_task(t2.id).await.unwrap().status(), Status::Expired);
}
