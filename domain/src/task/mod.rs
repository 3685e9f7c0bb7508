//! Tasks and their lifecycle: `new → retained → released | retry → … → failed`, or `expired`.
//!
//! Each transition is a pure function of the task, its queue's policy and `now`; an illegal
//! transition returns an error and changes nothing. The in-memory adapter calls these
//! functions directly; the PostgreSQL adapter states the same rules in SQL and is tested
//! against them.
//!
//! The lifecycle fields of a [`Task`] are private: a task changes only through these
//! transitions, and a store rebuilds one from its columns only through [`Task::restore`],
//! which checks that the columns describe a state the rules can reach.

mod new;
mod operate;
mod outcome;
mod unique;
mod view;

pub(crate) use new::present;
pub use new::{NewTask, TaskMeta};
pub use operate::Cancelled;
pub use outcome::{Outcome, OutcomeKind};
pub use unique::{Created, MAX_KEY_LEN, MAX_PRIORITY, MIN_PRIORITY, UniqueKey, priority};
pub use view::TaskView;

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::name::{Namespace, QueueName};
use crate::page::Page;
use crate::queue::Queue;
use crate::status::{State, Status};
use crate::time::{self, Timestamp};
use crate::worker::WorkerName;
use serde::Serialize;
use serde_json::Value;

/// A task's identifier, unique across namespaces.
pub type TaskId = i64;

/// A task as stored, and as sent on the wire (its `Serialize` is the wire shape; clients
/// read it back as a [`TaskView`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Identifier.
    pub id: TaskId,
    /// The queue it belongs to.
    pub queue: QueueName,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// What the worker is asked to do; any JSON value, `null` included.
    pub payload: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delayed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<Timestamp>,
    dies_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_expires_at: Option<Timestamp>,
    retries: u32,
    status: Status,
    priority: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_key: Option<UniqueKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_requested_at: Option<Timestamp>,
    /// Attempts allowed at creation; with `retries` it gives the failures so far.
    #[serde(skip)]
    max_retries: u32,
    #[serde(skip)]
    state: State,
}

/// A task's columns as a store keeps them, to rebuild it with [`Task::restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// Identifier.
    pub id: TaskId,
    /// The queue.
    pub queue: QueueName,
    /// The tenant.
    pub namespace: Namespace,
    /// The payload.
    pub payload: Value,
    /// The last attempt's result or error payload.
    pub result: Option<Value>,
    /// Who retained it last.
    pub worker: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Not to be retained before this.
    pub delayed_at: Option<Timestamp>,
    /// When the current (or last) attempt started.
    pub started_at: Option<Timestamp>,
    /// When it ended for good.
    pub finished_at: Option<Timestamp>,
    /// When it expires if not finished.
    pub dies_at: Timestamp,
    /// When the current attempt's lease runs out.
    pub lease_expires_at: Option<Timestamp>,
    /// Attempts left.
    pub retries: u32,
    /// Attempts allowed at creation.
    pub max_retries: u32,
    /// The stored lifecycle state.
    pub state: State,
    /// −100 to 100.
    pub priority: i16,
    /// The unique key, if any.
    pub unique_key: Option<UniqueKey>,
    /// When an operator asked the worker holding it to stop.
    pub cancel_requested_at: Option<Timestamp>,
}

/// Which tasks a listing shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    /// Only this queue's tasks.
    pub queue: Option<QueueName>,
    /// Only tasks in this (derived) status.
    pub status: Option<Status>,
    /// The window.
    pub page: Page,
}

/// The error payload stored when a lease passes without a release or heartbeat.
pub fn lease_expired_error() -> Value {
    serde_json::json!({"error": "lease expired"})
}

/// The delay before the next attempt after the k-th failure: `retry_delay × k²`.
pub fn backoff(retry_delay: Duration, failures: u32) -> Duration {
    let k = i64::from(failures);
    retry_delay.saturating_mul(k.saturating_mul(k))
}

impl Task {
    /// Creates a task in `queue` at `now`; the caller assigns `id`. It keeps the queue's
    /// `retries` as they are now; a queue allowing no attempt makes it `failed` at once. It
    /// dies one `ttl` after it becomes due (`max(delayed_at, now)`), at the latest at
    /// [`time::MAX_TIMESTAMP`]. A delay already past makes it due at once.
    pub fn create(id: TaskId, queue: &Queue, new: NewTask, now: Timestamp) -> Task {
        let now = time::truncate(now);
        let delayed_at = new.delayed_at();
        let start = delayed_at.map_or(now, |d| d.max(now));
        let failed = queue.retries == 0;
        let state = if failed { State::Failed } else { State::New };
        let dies_at = time::add(start, queue.ttl);
        let (priority, unique_key) = (new.priority(), new.unique_key().cloned());
        Task {
            id,
            queue: queue.name.clone(),
            namespace: queue.namespace.clone(),
            payload: new.into_payload(),
            result: None,
            worker: None,
            created_at: now,
            delayed_at,
            started_at: None,
            finished_at: failed.then_some(now),
            dies_at,
            lease_expires_at: None,
            retries: queue.retries,
            max_retries: queue.retries,
            status: Status::derive(state, dies_at, now),
            state,
            priority,
            unique_key,
            cancel_requested_at: None,
        }
    }

    /// Rebuilds a stored task, its status derived at `now`. Refuses columns that no sequence
    /// of transitions can produce (a store was written by something other than these rules).
    pub fn restore(r: TaskRecord, now: Timestamp) -> Result<Task> {
        let broken = |why: &str| Error::InvalidRecord(format!("task {}: {why}", r.id));
        if r.retries > r.max_retries {
            return Err(broken("more attempts left than it started with"));
        }
        match r.state {
            State::Retained if r.worker.is_none() || r.lease_expires_at.is_none() => {
                return Err(broken("retained without a worker or a lease"));
            }
            State::Released | State::Failed | State::Cancelled if r.finished_at.is_none() => {
                return Err(broken("ended without finished_at"));
            }
            s if s != State::Retained && r.cancel_requested_at.is_some() => {
                return Err(broken("a cancel request on a task nobody holds"));
            }
            _ => {}
        }
        Ok(Task {
            id: r.id,
            queue: r.queue,
            namespace: r.namespace,
            payload: r.payload,
            result: r.result,
            worker: r.worker,
            created_at: r.created_at,
            delayed_at: r.delayed_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            dies_at: r.dies_at,
            lease_expires_at: r.lease_expires_at,
            retries: r.retries,
            max_retries: r.max_retries,
            status: Status::derive(r.state, r.dies_at, now),
            state: r.state,
            priority: r.priority,
            unique_key: r.unique_key,
            cancel_requested_at: r.cancel_requested_at,
        })
    }

    /// Re-derives the visible status at `now`. Adapters call this on every task they return.
    pub fn observe(mut self, now: Timestamp) -> Task {
        self.status = Status::derive(self.state, self.dies_at, now);
        self
    }

    /// The last attempt's result or error payload.
    pub fn result(&self) -> Option<&Value> {
        self.result.as_ref()
    }
    /// Who retained it last.
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref()
    }
    /// Not to be retained before this (initial delay or backoff).
    pub fn delayed_at(&self) -> Option<Timestamp> {
        self.delayed_at
    }
    /// When the current (or last) attempt started.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }
    /// When it was released or failed for good.
    pub fn finished_at(&self) -> Option<Timestamp> {
        self.finished_at
    }
    /// When it expires if not finished.
    pub fn dies_at(&self) -> Timestamp {
        self.dies_at
    }
    /// When the current attempt's lease runs out unless heartbeated.
    pub fn lease_expires_at(&self) -> Option<Timestamp> {
        self.lease_expires_at
    }
    /// Attempts left.
    pub fn retries(&self) -> u32 {
        self.retries
    }
    /// Attempts allowed when it was created (its queue's `retries` then).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }
    /// The status users see, derived when the task was last read or changed.
    pub fn status(&self) -> Status {
        self.status
    }
    /// The stored lifecycle state.
    pub fn state(&self) -> State {
        self.state
    }
    /// −100 to 100; higher runs first.
    pub fn priority(&self) -> i16 {
        self.priority
    }
    /// The unique key it was created with (cleared when it gave the key up: see
    /// [`Task::gives_up_key`]).
    pub fn unique_key(&self) -> Option<&UniqueKey> {
        self.unique_key.as_ref()
    }

    /// When an operator asked the worker holding it to stop (present only while retained).
    pub fn cancel_requested_at(&self) -> Option<Timestamp> {
        self.cancel_requested_at
    }

    /// The order retains take waiting tasks in: higher priority first, then the oldest
    /// (creation, then id). Sort ascending by this key.
    pub fn claim_order(&self) -> (std::cmp::Reverse<i16>, Timestamp, TaskId) {
        (std::cmp::Reverse(self.priority), self.created_at, self.id)
    }

    /// Whether it holds its unique key at `now`: it has one, and it is waiting or retained
    /// (not ended, expiry included). A create with the key answers this task.
    pub fn holds_key(&self, now: Timestamp) -> bool {
        self.unique_key.is_some()
            && matches!(
                Status::derive(self.state, self.dies_at, now),
                Status::New | Status::Retry | Status::Retained
            )
    }

    /// Whether a create with its key at `now` takes the key from it: it has the key and a
    /// waiting or retained state, but has expired. Stores index keys by stored state (expiry
    /// is derived), so such a task gives its key up: its `unique_key` is cleared.
    pub fn gives_up_key(&self, now: Timestamp) -> bool {
        self.unique_key.is_some()
            && matches!(self.state, State::New | State::Retry | State::Retained)
            && !self.holds_key(now)
    }

    /// Clears the unique key of an expired task whose key a new task takes.
    pub fn give_up_key(&mut self, now: Timestamp) {
        if self.gives_up_key(now) {
            self.unique_key = None;
        }
    }

    /// The number of failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.max_retries.saturating_sub(self.retries)
    }

    /// Whether it counts against its queue's `max_running` at `now`: retained and not
    /// expired (its status is `retained`). It stops counting when it is released, rescued,
    /// cancelled or expires, at once.
    pub fn holds_slot(&self, now: Timestamp) -> bool {
        Status::derive(self.state, self.dies_at, now) == Status::Retained
    }

    /// Whether a worker may retain it at `now`: waiting (`new` or `retry`), due, not expired.
    pub fn is_retainable(&self, now: Timestamp) -> bool {
        matches!(self.state, State::New | State::Retry)
            && self.delayed_at.is_none_or(|d| d <= now)
            && now < self.dies_at
    }

    /// Hands it to `worker` for one attempt, holding it for `lease`.
    pub fn retain(&mut self, worker: &WorkerName, lease: Duration, now: Timestamp) -> Result<()> {
        let now = time::truncate(now);
        if !self.is_retainable(now) {
            return Err(Error::NotAvailable);
        }
        self.state = State::Retained;
        self.worker = Some(worker.as_str().to_string());
        self.started_at = Some(now);
        self.result = None;
        self.lease_expires_at = Some(time::add(now, lease));
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// Checks that the task is retained, and by `worker` when one is named (fencing).
    fn check_holder(&self, worker: Option<&WorkerName>) -> Result<()> {
        if self.state != State::Retained {
            return Err(Error::NotRetained);
        }
        match worker {
            Some(w) if self.worker.as_deref() != Some(w.as_str()) => {
                Err(Error::NotRetainedBy(w.as_str().to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Releases it with `outcome`. A retained task past its `dies_at` may still be released:
    /// the work was done. Failure uses one attempt and backs off by `retry_delay × k²`, or
    /// fails the task for good when no attempt remains.
    pub fn release(
        &mut self,
        outcome: &Outcome,
        retry_delay: Duration,
        now: Timestamp,
    ) -> Result<()> {
        let now = time::truncate(now);
        self.check_holder(outcome.worker())?;
        match outcome.kind() {
            OutcomeKind::Success => {
                self.state = State::Released;
                self.finished_at = Some(now);
                self.lease_expires_at = None;
                self.cancel_requested_at = None;
                self.result = outcome.result().cloned();
            }
            OutcomeKind::Failure => self.fail_attempt(outcome.result().cloned(), retry_delay, now),
        }
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// Counts one failed attempt with `error` stored as the result. An attempt that was
    /// asked to stop ends the task `cancelled` instead of backing off or failing.
    fn fail_attempt(&mut self, error: Option<Value>, retry_delay: Duration, now: Timestamp) {
        self.retries = self.retries.saturating_sub(1);
        self.result = error;
        self.lease_expires_at = None;
        if self.cancel_requested_at.take().is_some() {
            self.state = State::Cancelled;
            self.finished_at = Some(now);
        } else if self.retries > 0 {
            self.state = State::Retry;
            self.started_at = None;
            self.delayed_at = Some(time::add(now, backoff(retry_delay, self.failures())));
        } else {
            self.state = State::Failed;
            self.finished_at = Some(now);
        }
    }

    /// Whether its lease has passed at `now` so that lease rescue applies: retained, lease
    /// over, and not expired (an expired task stays expired; it gets no new attempt).
    pub fn is_rescuable(&self, now: Timestamp) -> bool {
        self.state == State::Retained
            && self.lease_expires_at.is_some_and(|l| l <= now)
            && now < self.dies_at
    }

    /// Rescues it from a worker that stopped heartbeating: a failed attempt with the result
    /// `{"error":"lease expired"}`.
    pub fn rescue(&mut self, retry_delay: Duration, now: Timestamp) -> Result<()> {
        let now = time::truncate(now);
        if self.state != State::Retained {
            return Err(Error::NotRetained);
        }
        if !self.is_rescuable(now) {
            return Err(Error::LeaseNotExpired);
        }
        self.fail_attempt(Some(lease_expired_error()), retry_delay, now);
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// Extends the lease of `worker`'s attempt to `now + lease`.
    pub fn heartbeat(
        &mut self,
        worker: &WorkerName,
        lease: Duration,
        now: Timestamp,
    ) -> Result<()> {
        let now = time::truncate(now);
        self.check_holder(Some(worker))?;
        if self.cancel_requested_at.is_some() {
            return Err(Error::Cancelled);
        }
        self.lease_expires_at = Some(time::add(now, lease));
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// When it reached its end (released, failed, cancelled or expired), if it has at `now`.
    pub fn ended_at(&self, now: Timestamp) -> Option<Timestamp> {
        match Status::derive(self.state, self.dies_at, now) {
            Status::Released | Status::Failed | Status::Cancelled => self.finished_at,
            Status::Expired => Some(self.dies_at),
            _ => None,
        }
    }

    /// Whether background clean-up deletes it at `now`: it ended at least `retention` ago.
    pub fn is_cleanable(&self, retention: Duration, now: Timestamp) -> bool {
        self.ended_at(now)
            .is_some_and(|end| time::add(end, retention) <= now)
    }
}

#[cfg(test)]
mod tests;
