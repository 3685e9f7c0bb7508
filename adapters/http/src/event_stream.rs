//! The event stream (`GET P/events`, `docs/events.md`): the namespace's task and queue events
//! as server-sent events, each with its `id:` so that a client that reconnects with
//! `Last-Event-ID` gets every later event once, in order.
//!
//! Like the ticker stream (`sse.rs`), a producer task feeds the body through a channel of
//! one and stops when the client goes or the server shuts down; it is interrupted only while
//! it waits, never during a read of the store.

use crate::sse::{Frames, PING_EVERY, PING_FRAME, shutdown_signalled};
use pgqueue_app::Manager;
use pgqueue_domain::{EventFilter, EventId, TaskEvent};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use warp::reply::Response;

/// How long to wait before reading again after a storage failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A task event's `data:` (spec §13).
#[derive(Serialize)]
struct TaskData<'a> {
    id: i64,
    queue: &'a str,
    namespace: &'a str,
    event: &'static str,
    status: &'static str,
    at: String,
}

/// A queue event's `data:`.
#[derive(Serialize)]
struct QueueData<'a> {
    queue: &'a str,
    namespace: &'a str,
    event: &'static str,
    at: String,
}

/// The frame of one event: `event: task` or `event: queue`, its id and compact JSON.
pub(crate) fn frame(e: &TaskEvent) -> String {
    let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let (name, data) = match (e.task, e.status) {
        (Some(id), Some(status)) => (
            "task",
            serde_json::to_string(&TaskData {
                id,
                queue: e.queue.as_str(),
                namespace: e.namespace.as_str(),
                event: e.kind.as_str(),
                status: status.as_str(),
                at,
            }),
        ),
        _ => (
            "queue",
            serde_json::to_string(&QueueData {
                queue: e.queue.as_str(),
                namespace: e.namespace.as_str(),
                event: e.kind.as_str(),
                at,
            }),
        ),
    };
    let data = data.unwrap_or_else(|_| "{}".to_string());
    format!("event: {name}\nid: {}\ndata: {data}\n\n", e.id)
}

/// The frame telling a reader its id is no longer kept; it carries the id it goes on from.
fn reset_frame(head: EventId) -> String {
    format!("event: reset\nid: {head}\ndata:\n\n")
}

/// Starts an event stream after `last` (none: from now on) for the events `filter` passes.
pub(crate) fn stream(
    manager: Manager,
    last: Option<EventId>,
    filter: EventFilter,
    shutdown: watch::Receiver<bool>,
) -> Response {
    let (tx, res) = crate::sse::channel();
    tokio::spawn(produce(manager, last, filter, tx, shutdown));
    res
}

async fn produce(
    manager: Manager,
    mut last: Option<EventId>,
    filter: EventFilter,
    tx: Frames,
    shutdown: watch::Receiver<bool>,
) {
    // A new reader starts at the head as of its first frame, not as of its first read: a
    // client that waits for the ping and then changes a task must see that change.
    if last.is_none()
        && let Ok(page) = manager
            .next_events(None, &filter, Duration::ZERO, std::future::pending())
            .await
    {
        last = Some(page.last);
    }
    if tx.send(Ok(PING_FRAME.to_string())).await.is_err() {
        return;
    }
    let mut ping_at = Instant::now() + PING_EVERY;
    loop {
        if *shutdown.borrow() || tx.is_closed() {
            return;
        }
        let wait = ping_at.saturating_duration_since(Instant::now());
        let stop = {
            let shutdown = shutdown.clone();
            let tx = &tx;
            async move {
                tokio::select! {
                    _ = shutdown_signalled(shutdown) => {}
                    _ = tx.closed() => {}
                }
            }
        };
        match manager.next_events(last, &filter, wait, stop).await {
            Ok(page) => {
                if page.reset && tx.send(Ok(reset_frame(page.last))).await.is_err() {
                    return;
                }
                for e in &page.events {
                    if tx.send(Ok(frame(e))).await.is_err() {
                        return;
                    }
                }
                last = Some(page.last);
                if page.reset || !page.events.is_empty() {
                    ping_at = Instant::now() + PING_EVERY;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading task events for a stream failed");
                let mut shutdown = shutdown.clone();
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(RETRY_AFTER_FAILURE) => {}
                }
            }
        }
        if Instant::now() >= ping_at {
            if tx.send(Ok(PING_FRAME.to_string())).await.is_err() {
                return;
            }
            ping_at = Instant::now() + PING_EVERY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgqueue_domain::{EventKind, Namespace, QueueName, Status};

    #[test]
    fn frames_carry_the_id_and_the_documented_fields() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut e = TaskEvent {
            id: 7,
            at,
            namespace: Namespace::parse("app").unwrap(),
            queue: QueueName::parse("emails").unwrap(),
            task: Some(12),
            kind: EventKind::Released,
            status: Some(Status::Released),
        };
        assert_eq!(
            frame(&e),
            "event: task\nid: 7\ndata: {\"id\":12,\"queue\":\"emails\",\"namespace\":\"app\",\
             \"event\":\"released\",\"status\":\"released\",\"at\":\"2026-12-02T10:00:00Z\"}\n\n"
        );
        e.task = None;
        e.status = None;
        e.kind = EventKind::Paused;
        assert_eq!(
            frame(&e),
            "event: queue\nid: 7\ndata: {\"queue\":\"emails\",\"namespace\":\"app\",\
             \"event\":\"paused\",\"at\":\"2026-12-02T10:00:00Z\"}\n\n"
        );
        assert_eq!(reset_frame(9), "event: reset\nid: 9\ndata:\n\n");
    }
}
