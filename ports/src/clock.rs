//! Where time comes from.
//!
//! pgqueue makes every time decision (is a task due, expired, has a ticker matured) with one
//! clock for all processes: in production the storage's own (PostgreSQL's `now()`), so servers
//! on different hosts agree. Tests and simulations pin time instead. A storage adapter is built
//! with a [`Clock`]: when it answers `None`, the adapter uses its own notion of now; when it
//! answers `Some(t)`, every decision uses `t`. The PostgreSQL adapter binds the answer to each
//! statement as `coalesce($now, now())`.

use chrono::{DateTime, TimeDelta, Utc};
use std::sync::Mutex;

/// A source of "now" for storage decisions.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The instant to use, or `None` to let the storage use its own clock.
    fn now(&self) -> Option<DateTime<Utc>>;
}

/// Production: the storage decides (the database's `now()`; the in-memory adapter's system
/// time).
#[derive(Debug, Default, Clone, Copy)]
pub struct StorageClock;

impl Clock for StorageClock {
    fn now(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// This process's system clock, explicitly.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Option<DateTime<Utc>> {
        Some(Utc::now())
    }
}

/// A clock moved by hand: deterministic tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock stopped at `start` (truncated to microseconds, like stored time).
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(pgqueue_domain::time::truncate(start)))
    }

    /// Sets the time.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = pgqueue_domain::time::truncate(t);
    }

    /// Moves the time forward (or back, for a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    /// The current time of this clock.
    pub fn get(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Option<DateTime<Utc>> {
        Some(self.get())
    }
}
