//! Tickers: named schedules, each maturity claimed exactly once.
//!
//! A ticker stores its next maturity (`next_at`), computed here whenever it fires or its
//! schedule changes; stores only compare it with their clock. That keeps one rulebook for
//! interval and cron schedules alike (a cron expression cannot be evaluated in SQL), and a
//! claim is a compare-and-swap of `next_at`, so processes racing over a maturity cannot
//! both win, and a process that restarts often still fires: the maturity is in storage,
//! not in its memory.

mod meta;
mod schedule;
#[cfg(test)]
mod tests;

pub use meta::{TickerMeta, TickerPatch};
pub use schedule::{Cron, CronExpr, Schedule, Zone};

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::name::{Namespace, QueueName, TickerName};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How often an interval ticker fires by default: 1 minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_mins(1);
/// The most maturities one schedule question answers (and `n`'s default is 5).
pub const MAX_SCHEDULE: u32 = 100;

/// A ticker as stored and as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "wire::TickerWire", into = "wire::TickerWire")]
pub struct Ticker {
    /// Its name, unique within the namespace.
    pub name: TickerName,
    /// Delivered with every maturity (or used as the task payload).
    pub payload: Value,
    /// When it matures.
    pub schedule: Schedule,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// When it last fired; absent if never.
    pub timestamp: Option<Timestamp>,
    /// When set, every maturity becomes a task on this queue instead of a delivery.
    pub queue: Option<QueueName>,
    /// The priority of the tasks it creates (default 0).
    pub priority: Option<i16>,
    /// Since when it does not fire (absent: not paused).
    pub paused_at: Option<Timestamp>,
    /// Its next maturity: it is matured once `next_at ≤ now` (and not paused).
    pub next_at: Timestamp,
}

impl Ticker {
    /// A ticker with the default payload (`{}`) and interval, never fired, matured now.
    pub fn new(namespace: Namespace, name: TickerName, now: Timestamp) -> Self {
        Self {
            name,
            payload: Value::Object(Default::default()),
            schedule: Schedule::Every(DEFAULT_INTERVAL),
            namespace,
            timestamp: None,
            queue: None,
            priority: None,
            paused_at: None,
            next_at: time::truncate(now),
        }
    }

    /// Pauses it: it does not fire until resumed (idempotent).
    pub fn pause(&mut self, now: Timestamp) {
        self.paused_at.get_or_insert(time::truncate(now));
    }

    /// Resumes it: it fires once at the next poll if it matured meanwhile.
    pub fn resume(&mut self) {
        self.paused_at = None;
    }

    /// A new ticker: the defaults, then the patch's settings (a name in the patch is
    /// ignored). An interval ticker is matured at once; a cron ticker first matures at the
    /// first matching time after `now`.
    pub fn from_patch(
        namespace: Namespace,
        name: TickerName,
        patch: &TickerPatch,
        now: Timestamp,
    ) -> Result<Self> {
        let mut t = Self::new(namespace, name, now);
        t.apply_settings(patch, now)?;
        Ok(t)
    }

    /// Applies the patch's settings but never renames (register and upserts).
    pub fn apply_settings(&mut self, patch: &TickerPatch, now: Timestamp) -> Result<()> {
        let name = self.name.clone();
        self.apply(patch, now)?;
        self.name = name;
        Ok(())
    }

    /// Applies the fields a patch gives, including a rename. Its timestamp is kept, and so
    /// is `next_at` unless the schedule changes (re-registering a ticker, as a restarting
    /// server does, must neither fire it again nor skip a maturity it missed). A changed
    /// interval applies from the last firing; a changed cron schedule from `now`.
    pub fn apply(&mut self, patch: &TickerPatch, now: Timestamp) -> Result<()> {
        let schedule = patch.schedule_from(&self.schedule)?;
        if let Some(name) = patch.name() {
            self.name = name.clone();
        }
        if let Some(payload) = patch.payload() {
            self.payload = payload.clone();
        }
        if let Some(queue) = patch.queue() {
            self.queue = queue.cloned();
        }
        if let Some(priority) = patch.priority() {
            self.priority = priority;
        }
        if schedule != self.schedule {
            self.next_at = match &schedule {
                Schedule::Every(i) => self
                    .timestamp
                    .map_or(time::truncate(now), |t| time::add(t, *i)),
                Schedule::Cron(c) => first_match(c, now)?,
            };
            self.schedule = schedule;
        }
        Ok(())
    }

    /// The priority of the tasks its maturities create.
    pub fn task_priority(&self) -> i16 {
        self.priority.unwrap_or(0)
    }

    /// Whether it has matured at `now`: not paused, and `next_at ≤ now`.
    pub fn is_matured(&self, now: Timestamp) -> bool {
        self.paused_at.is_none() && self.next_at <= now
    }

    /// The order in which matured tickers are claimed: never fired first, then the longest
    /// matured, then by namespace and name.
    pub fn claim_order(&self) -> (bool, Timestamp, &str, &str) {
        (
            self.timestamp.is_some(),
            self.next_at,
            self.namespace.as_str(),
            self.name.as_str(),
        )
    }

    /// Claims the current maturity: records `now` as the time it fired and moves `next_at`
    /// to the first maturity after `now` (missed maturities are not made up: it fires once
    /// after downtime).
    pub fn claim(&mut self, now: Timestamp) -> Result<()> {
        if !self.is_matured(now) {
            return Err(Error::NotMatured);
        }
        let now = time::truncate(now);
        self.timestamp = Some(now);
        self.next_at = self.schedule.next_after(now);
        Ok(())
    }

    /// Its next `n` maturities strictly after `from`, assuming each fires on time: an
    /// interval ticker `next_at`, then one interval after another; a cron ticker its
    /// matching times.
    pub fn upcoming(&self, from: Timestamp, n: u32) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n as usize);
        let mut at = match &self.schedule {
            Schedule::Every(i) => first_step_after(self.next_at, *i, from),
            Schedule::Cron(c) => {
                c.next_after(from.max(self.next_at - chrono::TimeDelta::microseconds(1)))
            }
        };
        while let Some(t) = at {
            if out.len() >= n as usize {
                break;
            }
            out.push(t);
            at = match &self.schedule {
                Schedule::Every(i) => Some(time::add(t, *i)).filter(|next| *next > t),
                Schedule::Cron(c) => c.next_after(t),
            };
        }
        out
    }
}

/// The first of `start`, `start + i`, `start + 2i`, … strictly after `from`.
fn first_step_after(start: Timestamp, i: Duration, from: Timestamp) -> Option<Timestamp> {
    if start > from {
        return Some(start);
    }
    let step = i.as_nanos() / 1000;
    if step <= 0 {
        return None;
    }
    let behind = (from - start).num_microseconds()?;
    let steps = behind / step + 1;
    start.checked_add_signed(chrono::TimeDelta::microseconds(steps.checked_mul(step)?))
}

/// A cron schedule's first maturity after `now`; refused when it never matches.
fn first_match(c: &Cron, now: Timestamp) -> Result<Timestamp> {
    c.next_after(time::truncate(now))
        .ok_or_else(|| Error::InvalidField {
            field: "cron",
            reason: format!("{:?} never matches", c.expr().as_str()),
        })
}

mod wire {
    //! The wire shape: `interval` for an interval ticker, `cron` and `timezone` for a cron
    //! one, never both. A plain struct rather than serde's `flatten`, which cannot read
    //! numbers with `serde_json`'s `arbitrary_precision`.

    use super::{Schedule, Ticker};
    use crate::duration::Duration;
    use crate::name::{Namespace, QueueName, TickerName};
    use crate::time::Timestamp;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    #[derive(Serialize, Deserialize)]
    pub(super) struct TickerWire {
        ticker: TickerName,
        payload: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
        namespace: Namespace,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timestamp: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<QueueName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        priority: Option<i16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused_at: Option<Timestamp>,
        next_at: Timestamp,
    }

    impl From<Ticker> for TickerWire {
        fn from(t: Ticker) -> Self {
            let (interval, cron, timezone) = match &t.schedule {
                Schedule::Every(i) => (Some(*i), None, None),
                Schedule::Cron(c) => (
                    None,
                    Some(c.expr().as_str().to_string()),
                    Some(c.zone().name().to_string()),
                ),
            };
            Self {
                ticker: t.name,
                payload: t.payload,
                interval,
                cron,
                timezone,
                namespace: t.namespace,
                timestamp: t.timestamp,
                queue: t.queue,
                priority: t.priority,
                paused_at: t.paused_at,
                next_at: t.next_at,
            }
        }
    }

    impl TryFrom<TickerWire> for Ticker {
        type Error = crate::error::Error;

        fn try_from(w: TickerWire) -> Result<Self, Self::Error> {
            Ok(Self {
                schedule: Schedule::from_parts(
                    w.interval,
                    w.cron.as_deref(),
                    w.timezone.as_deref(),
                )?,
                name: w.ticker,
                payload: w.payload,
                namespace: w.namespace,
                timestamp: w.timestamp,
                queue: w.queue,
                priority: w.priority,
                paused_at: w.paused_at,
                next_at: w.next_at,
            })
        }
    }
}
