//! The event stream's store side (`docs/events.md`): every change recorded once, in order,
//! with the status after it; readers resume after their id, and are reset once the events
//! after it are no longer kept.

use super::*;
use pgqueue_domain::{EventFilter, EventId, EventKind, TaskEvent};
use pgqueue_ports::EventPage;

/// Reads everything after `last` at once (no waiting).
async fn read(m: &Manager, last: Option<EventId>) -> EventPage {
    m.next_events(
        last,
        &EventFilter::default(),
        std::time::Duration::ZERO,
        std::future::pending(),
    )
    .await
    .expect("read events")
}

/// Reads until the reader is up to date, in pages.
async fn read_all(m: &Manager, mut last: EventId) -> Vec<TaskEvent> {
    let mut all = Vec::new();
    loop {
        let page = read(m, Some(last)).await;
        assert!(!page.reset, "not reset");
        if page.events.is_empty() {
            return all;
        }
        last = page.last;
        all.extend(page.events);
    }
}

/// What a test checks of an event: its task, kind and status.
fn shape(e: &TaskEvent) -> (Option<i64>, EventKind, Option<Status>) {
    (e.task, e.kind, e.status)
}

/// Each change of a task, by workers and operators, is one event with the status after it,
/// in the order of the changes; queue pauses are queue events. Heartbeats, cancel requests
/// of running tasks and clean-ups of finished tasks are not events.
pub async fn every_change_is_one_event_in_order(s: Subject) {
    let m = s.manager("events");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        retries: Some(2),
        ttl: Some(Duration::from_mins(10)),
        retry_delay: Some(Duration::from_mins(1)),
        lease: Some(Duration::from_mins(5)),
        ..Default::default()
    })
    .await
    .unwrap();
    let start = read(&m, None).await;
    assert!(
        start.events.is_empty() && !start.reset,
        "a new reader starts now"
    );
    let head = start.last;

    let a = task(&m, "q", json!("a")).await;
    let b = task(&m, "q", json!("b")).await;
    let held = m.next_tasks("w", &["q"], 2).await.unwrap();
    assert_eq!(held.len(), 2);
    m.heartbeat(a.id, "w").await.unwrap();
    m.release_task(a.id, Outcome::done().by(worker("w")))
        .await
        .unwrap();
    m.release_task(b.id, fail(json!("boom")).by(worker("w")))
        .await
        .unwrap();
    s.advance(mins(3));
    let again = m.next_task("w", &["q"]).await.unwrap().unwrap();
    assert_eq!(again.id, b.id);
    m.cancel_task(b.id).await.unwrap();
    s.advance(mins(6));
    assert_eq!(s.store.rescue_leases(10).await.unwrap().len(), 1);
    m.retry_task(b.id).await.unwrap();
    let c = task(&m, "q", json!("c")).await;
    m.cancel_task(c.id).await.unwrap();
    m.delete_task(c.id).await.unwrap();
    m.pause_queue("q").await.unwrap();
    m.resume_queue("q").await.unwrap();
    assert_eq!(
        m.purge_tasks(Some("q"), &[Status::Released]).await.unwrap(),
        1
    );

    let events = read_all(&m, head).await;
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    let expected_ids: Vec<EventId> = (head + 1..=head + events.len() as u64).collect();
    assert_eq!(ids, expected_ids, "ids increase without gaps");
    use EventKind as K;
    use Status as S;
    assert_eq!(
        events.iter().map(shape).collect::<Vec<_>>(),
        vec![
            (Some(a.id), K::Created, Some(S::New)),
            (Some(b.id), K::Created, Some(S::New)),
            (Some(a.id), K::Retained, Some(S::Retained)),
            (Some(b.id), K::Retained, Some(S::Retained)),
            (Some(a.id), K::Released, Some(S::Released)),
            (Some(b.id), K::Failed, Some(S::Retry)),
            (Some(b.id), K::Retained, Some(S::Retained)),
            // The cancel request of a running task is no event; its end is.
            (Some(b.id), K::Rescued, Some(S::Cancelled)),
            (Some(b.id), K::Retry, Some(S::New)),
            (Some(c.id), K::Created, Some(S::New)),
            (Some(c.id), K::Cancelled, Some(S::Cancelled)),
            (Some(c.id), K::Deleted, Some(S::Cancelled)),
            (None, K::Paused, None),
            (None, K::Resumed, None),
            (Some(a.id), K::Deleted, Some(S::Released)),
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.queue.as_str() == "q" && e.namespace.as_str() == "events"),
        "each event names its queue and namespace"
    );
    assert_eq!(
        events[0].at,
        s.now() - mins(9),
        "stamped with the change's instant"
    );
    let last = events.last().map(|e| e.id).unwrap_or(head);
    assert_eq!(read(&m, Some(last)).await.events, vec![], "read once");
}

/// The clean-up announces the tasks that expired without finishing (`expired`), not those
/// it removes after they finished; a queue's clean-up deletes.
pub async fn expired_tasks_are_announced_by_the_clean_up(s: Subject) {
    let m = s.manager("expiry");
    m.create_queue(QueueMeta {
        queue: Some("q".into()),
        ttl: Some(Duration::from_mins(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let done = task(&m, "q", json!(1)).await;
    let expiring = task(&m, "q", json!(2)).await;
    let head = read(&m, None).await.last;
    m.next_task_from("w", "q").await.unwrap();
    m.release_task(done.id, Outcome::done()).await.unwrap();
    s.advance(mins(21));
    assert_eq!(s.store.clean_up(100).await.unwrap(), 2);
    let events = read_all(&m, head).await;
    assert_eq!(
        events.iter().map(shape).collect::<Vec<_>>(),
        vec![
            (Some(done.id), EventKind::Retained, Some(Status::Retained)),
            (Some(done.id), EventKind::Released, Some(Status::Released)),
            (Some(expiring.id), EventKind::Expired, Some(Status::Expired)),
        ]
    );
    let left = task(&m, "q", json!(3)).await;
    s.advance(mins(11));
    let head = read(&m, None).await.last;
    assert_eq!(m.clean_queue("q").await.unwrap().len(), 1);
    assert_eq!(
        read_all(&m, head)
            .await
            .iter()
            .map(shape)
            .collect::<Vec<_>>(),
        vec![(Some(left.id), EventKind::Deleted, Some(Status::Expired))]
    );
}

/// A reader sees only its namespace's events, and filters by queue and kind; its position
/// moves past other namespaces' events all the same.
pub async fn events_stay_in_their_namespace_and_filter(s: Subject) {
    let a = s.manager("ev-a");
    let b = s.manager("ev-b");
    for m in [&a, &b] {
        queue(m, "q").await;
        queue(m, "r").await;
    }
    let head = read(&a, None).await.last;
    let qa = task(&a, "q", json!(1)).await;
    let ra = task(&a, "r", json!(2)).await;
    task(&b, "q", json!(3)).await;
    a.next_task("w", &["q"]).await.unwrap();
    let page = read(&a, Some(head)).await;
    assert_eq!(
        page.events.iter().map(shape).collect::<Vec<_>>(),
        vec![
            (Some(qa.id), EventKind::Created, Some(Status::New)),
            (Some(ra.id), EventKind::Created, Some(Status::New)),
            (Some(qa.id), EventKind::Retained, Some(Status::Retained)),
        ]
    );
    assert_eq!(page.last, head + 4, "past b's event too");
    let only = a.event_filter(&["r"], &[]).unwrap();
    let kinds = a.event_filter(&[], &["retained"]).unwrap();
    for (filter, expected) in [(only, vec![ra.id]), (kinds, vec![qa.id])] {
        let page = a
            .next_events(
                Some(head),
                &filter,
                std::time::Duration::ZERO,
                std::future::pending(),
            )
            .await
            .unwrap();
        assert_eq!(
            page.events
                .iter()
                .filter_map(|e| e.task)
                .collect::<Vec<_>>(),
            expected
        );
    }
    assert!(matches!(
        a.event_filter(&[], &["exploded"]),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        a.event_filter(&["Not A Name!"], &[]),
        Err(Error::Invalid(_))
    ));
}

/// A reader whose events were pruned, or whose id was never given out, is reset to the
/// newest id; one within the window resumes. Pruning keeps the newer events.
pub async fn readers_past_the_retention_window_are_reset(s: Subject) {
    let m = s.manager("window");
    queue(&m, "q").await;
    let head = read(&m, None).await.last;
    task(&m, "q", json!(1)).await;
    s.advance(mins(61));
    let kept = task(&m, "q", json!(2)).await;
    assert!(
        s.store.prune_events(Duration::from_hours(1)).await.unwrap() > 0,
        "the old event is forgotten"
    );
    let reset = read(&m, Some(head)).await;
    assert!(reset.reset && reset.events.is_empty());
    assert_eq!(reset.last, head + 2, "continues from the newest");
    let resumed = read(&m, Some(head + 1)).await;
    assert!(!resumed.reset);
    assert_eq!(
        resumed.events.iter().map(|e| e.task).collect::<Vec<_>>(),
        vec![Some(kept.id)]
    );
    let ahead = read(&m, Some(head + 100)).await;
    assert!(ahead.reset, "an id never given out");
    assert_eq!(
        s.store.prune_events(Duration::from_hours(1)).await.unwrap(),
        0
    );
}
