//! Reading the event stream: the namespace's task and queue events after an id, waiting for
//! the next ones when there are none yet. The HTTP event stream (`GET P/events`) and
//! embedders use this; the store guarantees each event is read once, in order.

use super::Manager;
use crate::error::{Error, Result};
use pgqueue_domain::{EventFilter, EventId, EventKind, QueueName};
use pgqueue_ports::{EventPage, Wakeup};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often a waiting reader looks again without a wake-up. Creates wake readers at once;
/// other changes (releases, retries, pauses) send no wake-up of their own, so they reach a
/// live reader within this.
pub const EVENT_POLL: Duration = Duration::from_millis(250);

/// How many events one read asks the store for.
const PAGE: u32 = 500;

impl Manager {
    /// The filter of a reader: `queues` and `kinds` by name (empty: all).
    pub fn event_filter(&self, queues: &[&str], kinds: &[&str]) -> Result<EventFilter> {
        Ok(EventFilter {
            queues: queues
                .iter()
                .map(|q| QueueName::parse(q))
                .collect::<std::result::Result<_, _>>()?,
            kinds: kinds
                .iter()
                .map(|k| EventKind::parse(k))
                .collect::<std::result::Result<_, _>>()?,
        })
    }

    /// The events of this namespace after `last` that pass `filter` (`last` none: from now
    /// on). When none has happened yet, waits up to `wait` for some, woken by the store's
    /// signal and a poll every [`EVENT_POLL`]; `stop` ends the wait early. The answer's
    /// `last` is where to read on from, even when every event was filtered out; `reset`
    /// says the reader's id was no longer kept (it then continues from the newest).
    pub async fn next_events(
        &self,
        last: Option<EventId>,
        filter: &EventFilter,
        wait: Duration,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<EventPage> {
        let deadline = Instant::now() + wait;
        let mut wakeups = self.store.signal().subscribe();
        tokio::pin!(stop);
        let mut last = last;
        loop {
            let mut page = self
                .store
                .read_events(&self.namespace, last, PAGE)
                .await
                .map_err(Error::from)?;
            page.events.retain(|e| filter.matches(e));
            let now = Instant::now();
            if page.reset || !page.events.is_empty() || now >= deadline {
                return Ok(page);
            }
            last = Some(page.last);
            let until = deadline.min(now + EVENT_POLL);
            loop {
                tokio::select! {
                    _ = &mut stop => return Ok(EventPage { events: Vec::new(), last: page.last, reset: false }),
                    _ = tokio::time::sleep_until(until) => break,
                    w = wakeups.recv() => match w {
                        Ok(Wakeup::Task { namespace, .. }) if namespace == self.namespace => break,
                        Ok(Wakeup::Resync) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep_until(until).await;
                            break;
                        }
                        Ok(_) => {}
                    },
                }
            }
        }
    }
}
