//! Queues: create, register, update, rename, delete, list, status counts.

use super::*;

/// Create with defaults, conflict on a second create, get, update only given fields, errors.
pub async fn queue_crud(s: Subject) {
    let m = s.manager("crud");
    let q = m
        .create_queue(QueueMeta {
            queue: Some(" Emails ".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.name.as_str(), "emails");
    assert_eq!(
        (q.ttl, q.retries, q.retry_delay, q.lease),
        (
            Duration::from_hours(1),
            3,
            Duration::from_mins(2),
            Duration::from_mins(5)
        )
    );
    assert_eq!(q.namespace.as_str(), "crud");
    let again = m
        .create_queue(QueueMeta {
            queue: Some("emails".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        again.unwrap_err(),
        Error::Conflict("queue already exists".into())
    );
    assert_eq!(m.get_queue("EMAILS").await.unwrap(), q);
    assert!(matches!(m.get_queue("nope").await, Err(Error::NotFound(_))));
    let updated = m
        .update_queue(
            "emails",
            QueueMeta {
                retries: Some(7),
                ttl: Some(Duration::from_secs(90)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.retries, updated.ttl, updated.retry_delay),
        (7, Duration::from_secs(90), Duration::from_mins(2))
    );
    assert_eq!(m.get_queue("emails").await.unwrap(), updated);
    assert!(matches!(
        m.update_queue(
            "nope",
            QueueMeta {
                retries: Some(1),
                ..Default::default()
            }
        )
        .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        m.update_queue("emails", QueueMeta::default()).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        m.delete_queue("nope").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(m.delete_queue("emails").await.unwrap(), updated);
    assert!(matches!(
        m.get_queue("emails").await,
        Err(Error::NotFound(_))
    ));
}

/// `register_queue` creates with defaults, then applies only the given fields.
pub async fn queue_register_is_an_upsert(s: Subject) {
    let m = s.manager("reg");
    let q = m
        .register_queue(QueueMeta {
            queue: Some("jobs".into()),
            retries: Some(5),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.retries, q.ttl), (5, Duration::from_hours(1)));
    let q = m
        .register_queue(QueueMeta {
            queue: Some("jobs".into()),
            ttl: Some(Duration::from_secs(10)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((q.retries, q.ttl), (5, Duration::from_secs(10)));
    assert_eq!(m.list_queues(Page::default()).await.unwrap().count, 1);
}

/// Renaming a queue carries its tasks; renaming onto another conflicts; deleting deletes tasks.
pub async fn queue_rename_carries_tasks_and_delete_cascades(s: Subject) {
    let m = s.manager("ren");
    queue(&m, "old").await;
    queue(&m, "other").await;
    let t = task(&m, "old", json!(1)).await;
    let renamed = m
        .update_queue(
            "old",
            QueueMeta {
                queue: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "new");
    assert_eq!(m.get_task(t.id).await.unwrap().queue.as_str(), "new");
    assert!(matches!(m.get_queue("old").await, Err(Error::NotFound(_))));
    let clash = m
        .update_queue(
            "new",
            QueueMeta {
                queue: Some("other".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
    assert_eq!(m.get_task(t.id).await.unwrap().queue.as_str(), "new");
    m.delete_queue("new").await.unwrap();
    assert!(matches!(m.get_task(t.id).await, Err(Error::NotFound(_))));
}

/// Queues come ordered by name; `count` is the total; `limit` is capped at 100.
pub async fn queue_listing_is_ordered_and_paginated(s: Subject) {
    let m = s.manager("list");
    for i in (0..105).rev() {
        queue(&m, &format!("q{i:03}")).await;
    }
    let all = m.list_queues(Page::new(None, Some(1000))).await.unwrap();
    assert_eq!((all.count, all.items.len()), (105, 100));
    assert_eq!(all.items[0].name.as_str(), "q000");
    assert_eq!(all.items[99].name.as_str(), "q099");
    let page = m.list_queues(Page::new(Some(103), Some(10))).await.unwrap();
    let names: Vec<&str> = page.items.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["q103", "q104"]);
    let empty = m.list_queues(Page::new(None, Some(0))).await.unwrap();
    assert_eq!((empty.count, empty.items.len()), (105, 0));
}

/// Every queue × every status, zeros included.
pub async fn queue_statuses_count_every_status(s: Subject) {
    let m = s.manager("stats");
    queue(&m, "a").await;
    queue(&m, "b").await;
    let tasks = m
        .create_tasks("a", vec![TaskMeta::new(json!(1)); 4])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.into_task())
        .collect::<Vec<_>>();
    m.next_tasks("w", &["a"], 3).await.unwrap();
    m.release_task(tasks[0].id, Outcome::done()).await.unwrap();
    m.release_task(tasks[1].id, fail(json!("e"))).await.unwrap();
    let stats = m.queue_statuses().await.unwrap();
    assert_eq!(stats.len(), 2 * Status::ALL.len());
    let get = |q: &str, st: Status| {
        stats
            .iter()
            .find(|c| c.queue.as_str() == q && c.status == st)
            .map(|c| c.count)
    };
    assert_eq!(
        Status::ALL.map(|st| get("a", st)),
        [
            Some(1),
            Some(1),
            Some(1),
            Some(1),
            Some(0),
            Some(0),
            Some(0)
        ],
        "new, retained, retry, released, failed, expired, cancelled"
    );
    assert_eq!(Status::ALL.map(|st| get("b", st)), [Some(0); 7]);
    assert_eq!(stats[0].queue.as_str(), "a");
}
