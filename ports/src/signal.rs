//! Wake-ups: "a task may be available in queue Q", "tickers changed".
//!
//! Workers and schedulers sleep until something may have changed instead of polling. A signal
//! is a hint, never a promise: a wake-up may find nothing (another worker was faster), and a
//! missed wake-up is covered by a slow safety-net poll. The PostgreSQL adapter feeds it from
//! LISTEN/NOTIFY; the memory adapter directly.

use pgqueue_domain::{Namespace, QueueName};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::broadcast;

/// Something that may let a sleeper make progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// Tasks were created (or became available) in this queue.
    Task {
        /// The queue's namespace.
        namespace: Namespace,
        /// The queue.
        queue: QueueName,
    },
    /// A ticker was created or changed in this namespace: its maturity may be sooner.
    Ticker {
        /// The ticker's namespace.
        namespace: Namespace,
    },
    /// Wake-ups may have been lost (the listener reconnected): everyone should look once.
    Resync,
}

/// A broadcast of wake-ups. Subscribers that fall behind get a `Lagged` error, which they
/// treat like [`Wakeup::Resync`].
#[derive(Debug, Clone)]
pub struct Signal {
    sender: broadcast::Sender<Wakeup>,
    /// Set when the source cannot deliver wake-ups and sends [`Wakeup::Resync`] on a timer
    /// instead (LISTEN behind a transaction-mode pooler); shown as `pgqueue_notify_mode`.
    polling: Arc<AtomicBool>,
}

impl Signal {
    /// A signal with room for `capacity` undelivered wake-ups per subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
            polling: Arc::default(),
        }
    }

    /// Listens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.sender.subscribe()
    }

    /// Tells every subscriber. Nobody listening is fine.
    pub fn send(&self, w: Wakeup) {
        let _ = self.sender.send(w);
    }

    /// Says that wake-ups now come from a timer (`true`) or from the storage (`false`).
    pub fn set_polling(&self, polling: bool) {
        self.polling.store(polling, Ordering::Relaxed);
    }

    /// Whether wake-ups come from a timer rather than from the storage's notifications.
    pub fn polling(&self) -> bool {
        self.polling.load(Ordering::Relaxed)
    }
}

impl Default for Signal {
    fn default() -> Self {
        Self::new(1024)
    }
}
