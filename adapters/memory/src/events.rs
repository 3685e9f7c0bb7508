//! The event log in memory: events numbered as they are recorded, under the store's one
//! lock, so numbering order is commit order and a reader never misses one.

use chrono::{DateTime, Utc};
use pgqueue_domain::event::resume;
use pgqueue_domain::{EventId, Namespace, Resume, TaskEvent};
use pgqueue_ports::EventPage;
use std::collections::VecDeque;

/// The kept events, oldest first, and the newest id given out.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    kept: VecDeque<TaskEvent>,
    head: EventId,
}

impl EventLog {
    /// Numbers and keeps `events`, in their order.
    pub(crate) fn record(&mut self, events: impl IntoIterator<Item = TaskEvent>) {
        for mut e in events {
            self.head += 1;
            e.id = self.head;
            self.kept.push_back(e);
        }
    }

    /// Up to `limit` events of `ns` after `last` (domain: `event::resume`).
    pub(crate) fn read(&self, ns: &Namespace, last: Option<EventId>, limit: u32) -> EventPage {
        let after = match resume(last, self.kept.front().map(|e| e.id), self.head) {
            Resume::Reset(head) => {
                return EventPage {
                    events: Vec::new(),
                    last: head,
                    reset: true,
                };
            }
            Resume::After(id) => id,
        };
        // Ids are contiguous, so the first event after `after` is found by subtraction.
        let first = self.kept.front().map_or(0, |e| e.id);
        let skip = usize::try_from(after.saturating_add(1).saturating_sub(first)).unwrap_or(0);
        let mut events = Vec::new();
        let mut through = self.head;
        for e in self.kept.iter().skip(skip) {
            if &e.namespace == ns {
                events.push(e.clone());
                if events.len() >= limit as usize {
                    through = e.id;
                    break;
                }
            }
        }
        EventPage {
            events,
            last: through.max(after),
            reset: false,
        }
    }

    /// Forgets the events older than `before`, oldest first, stopping at the first that is
    /// not: what is kept stays everything after some id.
    pub(crate) fn prune(&mut self, before: DateTime<Utc>) -> u64 {
        let mut n = 0;
        while self.kept.front().is_some_and(|e| e.at < before) {
            self.kept.pop_front();
            n += 1;
        }
        n
    }
}
