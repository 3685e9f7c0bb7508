//! Retaining: order, filters, what a retain sets, wake-ups, and claims that never share.

use super::*;

/// Oldest first (creation, then id); delayed tasks wait; retries wait for their backoff.
pub async fn retain_takes_the_oldest_due_task(s: Subject) {
    let m = s.manager("order");
    queue(&m, "q").await;
    let first = task(&m, "q", json!(1)).await;
    let delayed = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(0)),
                delayed_at: Some(s.now() + mins(10)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_task();
    s.advance(secs(1));
    let second = task(&m, "q", json!(2)).await;
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, first.id);
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, second.id);
    assert_eq!(m.next_task("w", &[]).await.unwrap(), None);
    s.advance(mins(10));
    assert_eq!(m.next_task("w", &[]).await.unwrap().unwrap().id, delayed.id);
    let batch = m
        .create_tasks("q", (0..5).map(|i| TaskMeta::new(json!(i))).collect())
        .await
        .unwrap();
    let got = m.next_tasks("w", &["q"], 3).await.unwrap();
    let ids: Vec<i64> = got.iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        batch[..3].iter().map(|t| t.task().id).collect::<Vec<_>>()
    );
}

/// One queue, several, or (empty list) any; unknown names match nothing.
pub async fn retain_filters_by_queue(s: Subject) {
    let m = s.manager("filter");
    for q in ["a", "b", "c"] {
        queue(&m, q).await;
    }
    let ta = task(&m, "a", json!("a")).await;
    let tb = task(&m, "b", json!("b")).await;
    let tc = task(&m, "c", json!("c")).await;
    assert_eq!(m.next_task("w", &["ghost"]).await.unwrap(), None);
    assert_eq!(m.next_task("w", &["c"]).await.unwrap().unwrap().id, tc.id);
    assert_eq!(
        m.next_task("w", &["c", "b"]).await.unwrap().unwrap().id,
        tb.id
    );
    assert_eq!(m.next_task("w", &["c", "b"]).await.unwrap(), None);
    assert_eq!(m.next_task_from("w", "a").await.unwrap().unwrap().id, ta.id);
    assert_eq!(m.next_task_from("w", "a").await.unwrap(), None);
    assert!(matches!(
        m.next_task_from("w", "ghost").await,
        Err(Error::NotFound(_))
    ));
    task(&m, "b", json!("b2")).await;
    assert_eq!(
        m.next_task("w", &[]).await.unwrap().unwrap().payload,
        json!("b2")
    );
}

/// Retaining sets worker, started_at, lease_expires_at = now + lease, and clears the result.
pub async fn retain_sets_worker_start_and_lease(s: Subject) {
    let m = s.manager("fields");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        lease: Some(Duration::from_secs(30)),
        retry_delay: Some(Duration::ZERO),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = task(&m, "q", json!(1)).await;
    s.advance(secs(5));
    let r = m.next_task(" host@1 ", &["q"]).await.unwrap().unwrap();
    assert_eq!(
        (r.id, r.status(), r.worker()),
        (t.id, Status::Retained, Some("host@1"))
    );
    assert_eq!(
        (r.started_at(), r.lease_expires_at()),
        (Some(s.now()), Some(s.now() + secs(30)))
    );
    m.release_task(t.id, fail(json!("boom"))).await.unwrap();
    let again = m.next_task("host@2", &["q"]).await.unwrap().unwrap();
    assert_eq!(
        (again.result().cloned(), again.worker()),
        (None, Some("host@2"))
    );
    assert_eq!(m.get_task(t.id).await.unwrap(), again);
}

/// Creating tasks signals their queue, so sleeping workers wake without polling.
pub async fn creating_tasks_wakes_sleepers(s: Subject) {
    let m = s.manager("wake");
    queue(&m, "q").await;
    let mut wakeups = s.store.signal().subscribe();
    task(&m, "q", json!(1)).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match wakeups.recv().await {
                Ok(Wakeup::Task { namespace, queue }) => return (namespace, queue),
                Ok(_) => continue,
                Err(e) => panic!("signal failed: {e}"),
            }
        }
    })
    .await
    .expect("a wake-up within 5 s");
    assert_eq!((got.0.as_str(), got.1.as_str()), ("wake", "q"));
}

/// 8 concurrent retainers drain 2,000 tasks: each retained and released exactly once.
pub async fn concurrent_retainers_never_share(s: Subject) {
    drain_concurrently(s.manager("drain")).await;
}

/// The same through a manager that coalesces the single retains and releases (as the HTTP
/// server's does): still each task exactly once, to the caller that asked.
pub async fn group_commit_retainers_never_share(s: Subject) {
    drain_concurrently(s.manager("drain").with_group_commit()).await;
}

/// A one-statement claim for several workers: oldest first, the k-th task to the k-th
/// worker, as many as are available, each fenced to its own worker.
pub async fn retain_for_gives_the_kth_oldest_task_to_the_kth_worker(s: Subject) {
    let m = s.manager("many");
    for q in ["a", "b"] {
        queue(&m, q).await;
    }
    let a1 = task(&m, "a", json!(1)).await;
    s.advance(secs(1));
    task(&m, "b", json!("b")).await;
    s.advance(secs(1));
    let a2 = task(&m, "a", json!(2)).await;
    let a = [pgqueue_domain::QueueName::parse("a").unwrap()];
    let workers = [worker("w1"), worker("w2"), worker("w3")];
    let got = s
        .store
        .retain_tasks_for(m.namespace(), &workers, &a)
        .await
        .unwrap()
        .tasks;
    let shape: Vec<(i64, Option<&str>, Status)> =
        got.iter().map(|t| (t.id, t.worker(), t.status())).collect();
    assert_eq!(
        shape,
        vec![
            (a1.id, Some("w1"), Status::Retained),
            (a2.id, Some("w2"), Status::Retained)
        ]
    );
    assert!(matches!(
        m.release_task(a1.id, Outcome::done().by(worker("w2")))
            .await,
        Err(Error::Conflict(_))
    ));
    m.release_task(a2.id, Outcome::done().by(worker("w2")))
        .await
        .unwrap();
    // Any queue; nobody asked → nothing claimed.
    let rest = s
        .store
        .retain_tasks_for(m.namespace(), &workers[..1], &[])
        .await
        .unwrap()
        .tasks;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].payload, json!("b"));
    assert!(
        s.store
            .retain_tasks_for(m.namespace(), &[], &[])
            .await
            .unwrap()
            .tasks
            .is_empty()
    );
}

/// Group commit changes how calls reach the store, not what they mean: order, filters,
/// not-found queues, fencing and refusals answer as without it.
pub async fn group_commit_keeps_every_rule(s: Subject) {
    let m = s.manager("coalesced").with_group_commit();
    for q in ["a", "b"] {
        queue(&m, q).await;
    }
    let a = task(&m, "a", json!("a")).await;
    s.advance(secs(1));
    let b = task(&m, "b", json!("b")).await;
    assert_eq!(m.next_task("w", &["b"]).await.unwrap().unwrap().id, b.id);
    assert!(matches!(
        m.next_task_from("w", "ghost").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(m.next_task_from("w", "b").await.unwrap(), None);
    let got = m.next_task("w", &[]).await.unwrap().unwrap();
    assert_eq!((got.id, got.worker()), (a.id, Some("w")));
    assert!(matches!(
        m.release_task(a.id, Outcome::done().by(worker("x"))).await,
        Err(Error::Conflict(_))
    ));
    let done = m
        .release_task(a.id, fail(json!("boom")).by(worker("w")))
        .await
        .unwrap();
    assert_eq!(
        (done.status(), done.result().cloned()),
        (Status::Retry, Some(json!("boom")))
    );
    assert!(matches!(
        m.release_task(a.id, Outcome::done()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        m.release_task(999_999_999, Outcome::done()).await,
        Err(Error::NotFound(_))
    ));
}

/// 8 concurrent retainers on `m` drain 2,000 tasks: each retained and released exactly once.
async fn drain_concurrently(m: Manager) {
    queue(&m, "q").await;
    let created = m
        .create_tasks("q", (0..2000).map(|i| TaskMeta::new(json!(i))).collect())
        .await
        .unwrap();
    let mut workers = Vec::new();
    for w in 0..8 {
        let m = m.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let name = format!("w{w}");
            while let Some(t) = m.next_task(&name, &["q"]).await.expect("retain") {
                m.release_task(t.id, Outcome::done().by(worker(&name)))
                    .await
                    .expect("release");
                mine.push(t.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for w in workers {
        for id in w.await.expect("worker") {
            total += 1;
            assert!(seen.insert(id), "task {id} retained twice");
        }
    }
    assert_eq!(total, 2000);
    assert_eq!(
        seen,
        created.iter().map(|t| t.task().id).collect::<HashSet<_>>()
    );
    let released = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Released),
            page: Page::new(None, Some(0)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(released.count, 2000);
}
