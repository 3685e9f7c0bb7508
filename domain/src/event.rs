//! Task and queue events: what the event stream (`GET P/events`, `docs/events.md`) tells.
//!
//! Every change a store makes to a task is recorded as an event *in the same transaction* as
//! the change, so that a reader who missed some can get each of them later, once and in
//! order. Which change is which event is stated here once; the memory adapter records
//! [`TaskEvent::of`] directly and the PostgreSQL adapter restates it in each statement.
//!
//! What is *not* an event, on purpose: a heartbeat, a cancel request of a running task (the
//! `cancelled` event comes when its worker stops), the clean-up of a task that finished (it
//! was announced when it finished), the tasks of a deleted queue, and a rename. A task that
//! expires is announced when the clean-up removes it (`expired`): expiry is derived from
//! `dies_at` at read time and written nowhere until then.

use crate::error::{Error, Result};
use crate::name::{Namespace, QueueName};
use crate::status::{State, Status};
use crate::task::{Task, TaskId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// An event's position in the stream: increasing, without gaps in one store.
pub type EventId = u64;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A task was created (its status may already be `failed`, for a queue without attempts).
    Created,
    /// A worker retained the task.
    Retained,
    /// Its worker released it: done.
    Released,
    /// An attempt failed; the status says whether it waits for a retry or failed for good.
    Failed,
    /// An operator sent an ended task back to `new`.
    Retry,
    /// The task expired without finishing (announced when the clean-up removes it).
    Expired,
    /// It was cancelled: waiting, by an operator; running, when its worker stopped.
    Cancelled,
    /// Its lease ran out and the attempt was counted as failed.
    Rescued,
    /// An operator deleted it (one task, a purge, or a queue's clean-up).
    Deleted,
    /// A queue was paused.
    Paused,
    /// A queue was resumed.
    Resumed,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 11] = [
        EventKind::Created,
        EventKind::Retained,
        EventKind::Released,
        EventKind::Failed,
        EventKind::Retry,
        EventKind::Expired,
        EventKind::Cancelled,
        EventKind::Rescued,
        EventKind::Deleted,
        EventKind::Paused,
        EventKind::Resumed,
    ];

    /// The wire name (also the SQL value).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Retained => "retained",
            EventKind::Released => "released",
            EventKind::Failed => "failed",
            EventKind::Retry => "retry",
            EventKind::Expired => "expired",
            EventKind::Cancelled => "cancelled",
            EventKind::Rescued => "rescued",
            EventKind::Deleted => "deleted",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::InvalidEvent(s.to_string()))
    }

    /// Whether the event is about a queue (`event: queue` frames) rather than a task.
    pub fn is_queue_event(self) -> bool {
        matches!(self, EventKind::Paused | EventKind::Resumed)
    }

    /// The event of an attempt that ended, from the task after the release: success is
    /// `released`, a failure that ends a cancel request `cancelled`, any other `failed`.
    pub fn of_release(after: &Task) -> EventKind {
        match after.state() {
            State::Released => EventKind::Released,
            State::Cancelled => EventKind::Cancelled,
            _ => EventKind::Failed,
        }
    }

    /// The event of an operator's cancel, from the task after it: a waiting task is
    /// cancelled now; a running one was only asked to stop, which is no event yet.
    pub fn of_cancel(after: &Task) -> Option<EventKind> {
        (after.state() == State::Cancelled).then_some(EventKind::Cancelled)
    }

    /// The event of the clean-up removing `task`: only an expired task is news.
    pub fn of_clean_up(task: &Task) -> Option<EventKind> {
        (!task.state().is_finished()).then_some(EventKind::Expired)
    }
}

/// One event, before or after the store numbered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// Its position in the stream (0 until the store numbers it).
    pub id: EventId,
    /// When the change happened (the changing statement's instant).
    pub at: Timestamp,
    /// The namespace of the queue.
    pub namespace: Namespace,
    /// The queue.
    pub queue: QueueName,
    /// The task, for task events.
    pub task: Option<TaskId>,
    /// What happened.
    pub kind: EventKind,
    /// The task's status after the change (for `deleted` and `expired`: when it was removed).
    pub status: Option<Status>,
}

impl TaskEvent {
    /// The event `kind` of `task`, as the store returned it after the change at `now`.
    pub fn of(task: &Task, kind: EventKind, now: Timestamp) -> TaskEvent {
        TaskEvent {
            id: 0,
            at: now,
            namespace: task.namespace.clone(),
            queue: task.queue.clone(),
            task: Some(task.id),
            kind,
            status: Some(task.status()),
        }
    }

    /// A queue's event (`paused`, `resumed`).
    pub fn of_queue(ns: &Namespace, queue: &QueueName, kind: EventKind, now: Timestamp) -> Self {
        TaskEvent {
            id: 0,
            at: now,
            namespace: ns.clone(),
            queue: queue.clone(),
            task: None,
            kind,
            status: None,
        }
    }

    /// The events of one change of several tasks, in the order stores record them: by
    /// task id.
    pub fn of_all<'a>(
        tasks: impl IntoIterator<Item = &'a Task>,
        kind: impl Fn(&Task) -> Option<EventKind>,
        now: Timestamp,
    ) -> Vec<TaskEvent> {
        let mut events: Vec<TaskEvent> = tasks
            .into_iter()
            .filter_map(|t| kind(t).map(|k| TaskEvent::of(t, k, now)))
            .collect();
        events.sort_by_key(|e| e.task);
        events
    }
}

/// Which events a reader wants: empty lists mean all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these queues.
    pub queues: Vec<QueueName>,
    /// Only these kinds.
    pub kinds: Vec<EventKind>,
}

impl EventFilter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &TaskEvent) -> bool {
        (self.queues.is_empty() || self.queues.contains(&event.queue))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// With the events after this id.
    After(EventId),
    /// The events after the reader's id are no longer all kept (or the id was never given
    /// out): it is told so (`event: reset`) and continues after this id, the newest.
    Reset(EventId),
}

/// Where a reader that last saw `last` (none: a new reader) resumes, when the store's newest
/// event id is `head` and the oldest it still keeps is `oldest` (none kept: `None`). A new
/// reader starts at the head: the stream is of what happens from now on.
pub fn resume(last: Option<EventId>, oldest: Option<EventId>, head: EventId) -> Resume {
    let Some(last) = last else {
        return Resume::After(head);
    };
    let first_kept = oldest.unwrap_or(head.saturating_add(1));
    if last > head || last.saturating_add(1) < first_kept {
        Resume::Reset(head)
    } else {
        Resume::After(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(EventKind::parse("exploded").is_err());
        assert!(EventKind::Paused.is_queue_event());
        assert!(!EventKind::Created.is_queue_event());
    }

    #[test]
    fn a_new_reader_starts_at_the_head() {
        assert_eq!(resume(None, Some(1), 10), Resume::After(10));
        assert_eq!(resume(None, None, 0), Resume::After(0));
    }

    #[test]
    fn a_reader_within_the_window_resumes_where_it_stopped() {
        assert_eq!(resume(Some(4), Some(5), 10), Resume::After(4));
        assert_eq!(resume(Some(10), Some(5), 10), Resume::After(10));
        // Everything was pruned, but nothing happened after the reader's id.
        assert_eq!(resume(Some(10), None, 10), Resume::After(10));
    }

    #[test]
    fn a_reader_behind_the_window_or_ahead_of_the_head_is_reset() {
        assert_eq!(resume(Some(3), Some(5), 10), Resume::Reset(10));
        assert_eq!(resume(Some(9), None, 10), Resume::Reset(10));
        assert_eq!(resume(Some(11), Some(5), 10), Resume::Reset(10));
    }

    #[test]
    fn filters_pass_what_they_name() {
        let ns = Namespace::parse("a").unwrap();
        let q = QueueName::parse("q").unwrap();
        let e = TaskEvent::of_queue(&ns, &q, EventKind::Paused, Timestamp::default());
        assert!(EventFilter::default().matches(&e));
        let other = EventFilter {
            queues: vec![QueueName::parse("r").unwrap()],
            kinds: vec![],
        };
        assert!(!other.matches(&e));
        let kinds = EventFilter {
            queues: vec![],
            kinds: vec![EventKind::Resumed],
        };
        assert!(!kinds.matches(&e));
    }
}
