//! Creating and listing tasks.

use super::*;

/// A task keeps the queue's retries at creation; dies_at = max(delayed_at, now) + ttl.
pub async fn task_creation_follows_the_queue(s: Subject) {
    let m = s.manager("create");
    queue(&m, "q").await;
    let now = s.now();
    let t = task(&m, "q", json!({"to": "a@b"})).await;
    assert_eq!(
        (t.status(), t.retries(), t.payload.clone()),
        (Status::New, 3, json!({"to": "a@b"}))
    );
    assert_eq!(
        (t.created_at, t.dies_at()),
        (now, now + TimeDelta::hours(1))
    );
    assert_eq!(
        (t.worker(), t.started_at(), t.result().cloned()),
        (None, None, None)
    );
    let null = task(&m, "q", serde_json::Value::Null).await;
    assert_eq!(
        m.get_task(null.id).await.unwrap().payload,
        serde_json::Value::Null
    );
    let delayed = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(2)),
                delayed_at: Some(now + mins(30)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_task();
    assert_eq!(
        (delayed.delayed_at(), delayed.dies_at()),
        (Some(now + mins(30)), now + mins(90))
    );
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(9),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        m.get_task(t.id).await.unwrap().retries(),
        3,
        "later queue changes do not touch a task"
    );
    assert_eq!(task(&m, "q", json!(3)).await.retries(), 9);
    let past = m
        .create_task(
            "q",
            TaskMeta {
                payload: Some(json!(1)),
                delayed_at: Some(now - secs(1)),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        past,
        Err(Error::Invalid(pgqueue_domain::Error::DelayedInPast))
    ));
    assert!(matches!(
        m.create_task("ghost", TaskMeta::new(json!(1))).await,
        Err(Error::NotFound(_))
    ));
    m.update_queue(
        "q",
        QueueMeta {
            retries: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let doomed = task(&m, "q", json!(4)).await;
    assert_eq!(
        (doomed.status(), doomed.retries(), doomed.finished_at()),
        (Status::Failed, 0, Some(now))
    );
    assert_eq!(
        m.next_task("w", &["q"]).await.unwrap().map(|t| t.id),
        Some(t.id)
    );
}

/// A batch is created in order, in one go; an unknown queue creates nothing.
pub async fn task_batches_are_all_or_nothing(s: Subject) {
    let m = s.manager("batch");
    queue(&m, "q").await;
    let metas: Vec<TaskMeta> = (0..50).map(|i| TaskMeta::new(json!(i))).collect();
    let created = m
        .create_tasks("q", metas.clone())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.into_task())
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 50);
    assert!(created.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        created
            .iter()
            .enumerate()
            .all(|(i, t)| t.payload == json!(i))
    );
    // What create answers is what was stored, field for field, id for id.
    for t in &created {
        assert_eq!(&m.get_task(t.id).await.unwrap(), t);
    }
    assert!(m.create_tasks("ghost", metas).await.is_err());
    let mut with_bad = vec![TaskMeta::new(json!(1)); 3];
    with_bad.push(TaskMeta {
        payload: Some(json!(1)),
        delayed_at: Some(s.now() - secs(5)),
        ..Default::default()
    });
    assert!(m.create_tasks("q", with_bad).await.is_err());
    assert_eq!(
        m.list_tasks(&TaskFilter::default()).await.unwrap().count,
        50
    );
}

/// Tasks listed by id, filtered by queue and status, paginated with a true count.
pub async fn list_tasks_filters_and_paginates(s: Subject) {
    let m = s.manager("tasks");
    queue(&m, "a").await;
    queue(&m, "b").await;
    let a = m
        .create_tasks("a", vec![TaskMeta::new(json!("a")); 120])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.into_task())
        .collect::<Vec<_>>();
    let b = task(&m, "b", json!("b")).await;
    m.next_task("w", &["a"]).await.unwrap();
    let all = m.list_tasks(&TaskFilter::default()).await.unwrap();
    assert_eq!((all.count, all.items.len()), (121, 100));
    assert!(all.items.windows(2).all(|w| w[0].id < w[1].id));
    let only_b = m
        .list_tasks(&TaskFilter {
            queue: Some("b".parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        only_b.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![b.id]
    );
    let retained = m
        .list_tasks(&TaskFilter {
            status: Some(Status::Retained),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((retained.count, retained.items[0].id), (1, a[0].id));
    let page = m
        .list_tasks(&TaskFilter {
            queue: Some("a".parse().unwrap()),
            status: Some(Status::New),
            page: Page::new(Some(110), Some(5)),
        })
        .await
        .unwrap();
    assert_eq!(page.count, 119);
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        a[111..116].iter().map(|t| t.id).collect::<Vec<_>>()
    );
    let none = m
        .list_tasks(&TaskFilter {
            page: Page::new(None, Some(0)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((none.count, none.items.len()), (121, 0));
}
