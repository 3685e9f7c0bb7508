//! Tasks and their lifecycle: `new → retained → released | retry → … → failed`, or `expired`.
//!
//! Each transition is a pure function of the task, its queue's policy and `now`; an illegal
//! transition returns an error and changes nothing. The in-memory adapter calls these
//! functions directly; the PostgreSQL adapter states the same rules in SQL and is tested
//! against them.

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::name::{Namespace, QueueName};
use crate::page::Page;
use crate::queue::Queue;
use crate::status::{State, Status};
use crate::time::{self, Timestamp};
use crate::worker::WorkerName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task's identifier, unique across namespaces.
pub type TaskId = i64;

/// A task as stored and as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Identifier.
    pub id: TaskId,
    /// The queue it belongs to.
    pub queue: QueueName,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// What the worker is asked to do; any JSON value, `null` included.
    pub payload: Value,
    /// The last attempt's result or error payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Who retained it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Not to be retained before this (initial delay or backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_at: Option<Timestamp>,
    /// When the current attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it was released or failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// When it expires if not finished.
    pub dies_at: Timestamp,
    /// When the current attempt's lease runs out unless heartbeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    /// Attempts left.
    pub retries: u32,
    /// The status users see, derived from `state` at read time.
    pub status: Status,
    /// Attempts allowed at creation (the queue's `retries` then); with `retries` it gives the
    /// number of failures so far, which the backoff needs. Not part of the wire shape.
    #[serde(skip)]
    pub max_retries: u32,
    /// The stored lifecycle state. Not part of the wire shape (clients see `status`).
    #[serde(skip)]
    pub state: State,
}

/// What a user gives to create a task: the HTTP body or the Rust argument.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The payload; required, but an explicit JSON `null` is a payload. `None` means absent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub payload: Option<Value>,
    /// Not to be retained before this; must not be in the past.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_at: Option<Timestamp>,
}

/// Maps a present JSON value, `null` included, to `Some` (serde maps `null` to `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TaskMeta {
    /// A task with this payload, not delayed.
    pub fn new(payload: Value) -> Self {
        Self {
            payload: Some(payload),
            delayed_at: None,
        }
    }

    /// Checks the parts that do not depend on time (a payload is present) and moves the
    /// payload into the task to create: no copy of it on the enqueue path.
    pub fn validate(self) -> Result<NewTask> {
        let payload = self.payload.ok_or(Error::MissingPayload)?;
        Ok(NewTask {
            payload,
            delayed_at: self.delayed_at.map(time::truncate),
        })
    }
}

/// A validated task to create (payload present).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The payload.
    pub payload: Value,
    /// The delay, at microsecond resolution.
    pub delayed_at: Option<Timestamp>,
}

impl NewTask {
    /// Refuses a delay that has already passed at `now`.
    pub fn check_delay(&self, now: Timestamp) -> Result<()> {
        match self.delayed_at {
            Some(d) if d < time::truncate(now) => Err(Error::DelayedInPast),
            _ => Ok(()),
        }
    }
}

/// Whether a release reports success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The work was done.
    Success,
    /// The attempt failed; its error payload is stored in `result`.
    Failure,
}

/// How a worker releases a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Success or failure.
    pub kind: OutcomeKind,
    /// The result (success) or the error payload (failure), stored exactly as given.
    pub result: Option<Value>,
    /// When given, the release is refused unless this worker holds the task (fencing).
    pub worker: Option<WorkerName>,
}

impl Outcome {
    /// A success with an optional result.
    pub fn success(result: Option<Value>) -> Self {
        Self {
            kind: OutcomeKind::Success,
            result,
            worker: None,
        }
    }

    /// A failure with an error payload.
    pub fn failure(error: Value) -> Self {
        Self {
            kind: OutcomeKind::Failure,
            result: Some(error),
            worker: None,
        }
    }

    /// The same outcome, fenced: only `worker` may release.
    pub fn by(mut self, worker: WorkerName) -> Self {
        self.worker = Some(worker);
        self
    }
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
    /// Creates a task in `queue` at `now`. The caller assigns `id`. It keeps the queue's
    /// `retries` as they are now; a queue allowing no attempt makes it `failed` at once.
    pub fn create(id: TaskId, queue: &Queue, new: NewTask, now: Timestamp) -> Result<Task> {
        let now = time::truncate(now);
        new.check_delay(now)?;
        let start = new.delayed_at.map_or(now, |d| d.max(now));
        let failed = queue.retries == 0;
        let state = if failed { State::Failed } else { State::New };
        let dies_at = time::add(start, queue.ttl);
        Ok(Task {
            id,
            queue: queue.name.clone(),
            namespace: queue.namespace.clone(),
            payload: new.payload,
            result: None,
            worker: None,
            created_at: now,
            delayed_at: new.delayed_at,
            started_at: None,
            finished_at: failed.then_some(now),
            dies_at,
            lease_expires_at: None,
            retries: queue.retries,
            max_retries: queue.retries,
            status: Status::derive(state, dies_at, now),
            state,
        })
    }

    /// Re-derives the visible status at `now`. Adapters call this on every task they return.
    pub fn observe(mut self, now: Timestamp) -> Task {
        self.status = Status::derive(self.state, self.dies_at, now);
        self
    }

    /// The number of failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.max_retries.saturating_sub(self.retries)
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
        self.check_holder(outcome.worker.as_ref())?;
        match outcome.kind {
            OutcomeKind::Success => {
                self.state = State::Released;
                self.finished_at = Some(now);
                self.lease_expires_at = None;
                self.result = outcome.result.clone();
            }
            OutcomeKind::Failure => self.fail_attempt(outcome.result.clone(), retry_delay, now),
        }
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// Counts one failed attempt with `error` stored as the result.
    fn fail_attempt(&mut self, error: Option<Value>, retry_delay: Duration, now: Timestamp) {
        self.retries = self.retries.saturating_sub(1);
        self.result = error;
        self.lease_expires_at = None;
        if self.retries > 0 {
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
        self.lease_expires_at = Some(time::add(now, lease));
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// When it reached its end (released, failed or expired), if it has at `now`.
    pub fn ended_at(&self, now: Timestamp) -> Option<Timestamp> {
        match Status::derive(self.state, self.dies_at, now) {
            Status::Released | Status::Failed => self.finished_at,
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
mod tests {
    use super::*;
    use crate::queue::QueueMeta;
    use chrono::TimeDelta;
    use proptest::prelude::*;
    use serde_json::json;

    fn t0() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }
    fn queue() -> Queue {
        Queue::new(Namespace::default(), QueueName::parse("emails").unwrap())
    }
    fn worker(w: &str) -> WorkerName {
        WorkerName::parse(w).unwrap()
    }
    fn new_task(q: &Queue) -> Task {
        Task::create(
            1,
            q,
            TaskMeta::new(json!({"to":"a@b"})).validate().unwrap(),
            t0(),
        )
        .unwrap()
    }
    fn mins(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    #[test]
    fn creation_sets_dies_at_and_keeps_the_queues_retries() {
        let q = queue();
        let t = new_task(&q);
        assert_eq!(t.status, Status::New);
        assert_eq!(t.dies_at, t0() + TimeDelta::hours(1));
        assert_eq!((t.retries, t.max_retries), (3, 3));
        let delayed = TaskMeta {
            payload: Some(json!(1)),
            delayed_at: Some(t0() + mins(10)),
        };
        let t = Task::create(2, &q, delayed.validate().unwrap(), t0()).unwrap();
        assert_eq!(t.dies_at, t0() + mins(70));
        assert!(!t.is_retainable(t0()));
        assert!(t.is_retainable(t0() + mins(10)));
    }

    #[test]
    fn a_payload_is_required_but_null_is_a_payload() {
        assert_eq!(
            TaskMeta::default().validate().unwrap_err(),
            Error::MissingPayload
        );
        let m: TaskMeta = serde_json::from_str(r#"{"payload":null}"#).unwrap();
        assert_eq!(m.validate().unwrap().payload, Value::Null);
        let m: TaskMeta = serde_json::from_str(r#"{}"#).unwrap();
        assert!(m.validate().is_err());
    }

    #[test]
    fn a_delay_in_the_past_is_refused() {
        let meta = TaskMeta {
            payload: Some(json!(1)),
            delayed_at: Some(t0() - TimeDelta::seconds(1)),
        };
        assert_eq!(
            Task::create(1, &queue(), meta.validate().unwrap(), t0()).unwrap_err(),
            Error::DelayedInPast
        );
    }

    #[test]
    fn a_queue_without_attempts_fails_tasks_at_once() {
        let mut q = queue();
        q.apply(
            &QueueMeta {
                retries: Some(0),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        );
        let mut t = new_task(&q);
        assert_eq!(
            (t.status, t.retries, t.finished_at),
            (Status::Failed, 0, Some(t0()))
        );
        assert!(!t.is_retainable(t0()));
        assert_eq!(
            t.retain(&worker("w"), q.lease, t0()),
            Err(Error::NotAvailable)
        );
    }

    #[test]
    fn retain_sets_worker_start_and_lease_and_clears_the_result() {
        let q = queue();
        let mut t = new_task(&q);
        t.result = Some(json!("old"));
        t.retain(&worker("host@1"), q.lease, t0()).unwrap();
        assert_eq!(t.status, Status::Retained);
        assert_eq!(t.worker.as_deref(), Some("host@1"));
        assert_eq!(t.started_at, Some(t0()));
        assert_eq!(t.lease_expires_at, Some(t0() + mins(5)));
        assert_eq!(t.result, None);
        assert_eq!(
            t.retain(&worker("other"), q.lease, t0()),
            Err(Error::NotAvailable)
        );
    }

    #[test]
    fn success_releases_with_the_result() {
        let q = queue();
        let mut t = new_task(&q);
        t.retain(&worker("w"), q.lease, t0()).unwrap();
        t.release(
            &Outcome::success(Some(json!({"ok":true}))),
            q.retry_delay,
            t0() + mins(1),
        )
        .unwrap();
        assert_eq!(t.status, Status::Released);
        assert_eq!(t.finished_at, Some(t0() + mins(1)));
        assert_eq!(t.result, Some(json!({"ok":true})));
        assert_eq!(t.retries, 3);
    }

    /// The spec's example: 3 retries, 2 minutes → waits of 2 and 8 minutes, then `failed`.
    #[test]
    fn failures_back_off_quadratically_then_fail() {
        let q = queue();
        let mut t = new_task(&q);
        let mut now = t0();
        let mut waits = vec![];
        for attempt in 1..=3 {
            t.retain(&worker("w"), q.lease, now).unwrap();
            let err = json!({"attempt": attempt});
            t.release(&Outcome::failure(err.clone()), q.retry_delay, now)
                .unwrap();
            assert_eq!(t.result, Some(err), "the error payload is stored as sent");
            if let Some(d) = t.delayed_at.filter(|_| t.state == State::Retry) {
                waits.push(d - now);
                assert!(!t.is_retainable(d - TimeDelta::microseconds(1)));
                now = d;
            }
        }
        assert_eq!(waits, vec![mins(2), mins(8)]);
        assert_eq!(t.status, Status::Failed);
        assert_eq!(t.retries, 0);
        assert_eq!(t.finished_at, Some(now));
        assert_eq!(t.started_at, Some(now), "the last attempt's start is kept");
    }

    #[test]
    fn retry_clears_start_and_lease() {
        let q = queue();
        let mut t = new_task(&q);
        t.retain(&worker("w"), q.lease, t0()).unwrap();
        t.release(&Outcome::failure(json!("boom")), q.retry_delay, t0())
            .unwrap();
        assert_eq!((t.status, t.retries), (Status::Retry, 2));
        assert_eq!((t.started_at, t.lease_expires_at), (None, None));
        assert_eq!(t.delayed_at, Some(t0() + mins(2)));
    }

    #[test]
    fn only_retained_tasks_are_released() {
        let q = queue();
        let mut t = new_task(&q);
        assert_eq!(
            t.release(&Outcome::success(None), q.retry_delay, t0()),
            Err(Error::NotRetained)
        );
        t.retain(&worker("w"), q.lease, t0()).unwrap();
        t.release(&Outcome::success(None), q.retry_delay, t0())
            .unwrap();
        assert_eq!(
            t.release(&Outcome::success(None), q.retry_delay, t0()),
            Err(Error::NotRetained)
        );
    }

    #[test]
    fn a_task_that_expired_while_new_cannot_be_released() {
        let q = queue();
        let mut t = new_task(&q);
        let late = t.dies_at;
        assert_eq!(t.clone().observe(late).status, Status::Expired);
        assert_eq!(
            t.retain(&worker("w"), q.lease, late),
            Err(Error::NotAvailable)
        );
        assert_eq!(
            t.release(&Outcome::success(None), q.retry_delay, late),
            Err(Error::NotRetained)
        );
    }

    #[test]
    fn a_retained_task_past_dies_at_may_still_be_released() {
        let q = queue();
        let mut t = new_task(&q);
        t.retain(&worker("w"), q.lease, t0()).unwrap();
        let late = t.dies_at + mins(1);
        assert_eq!(t.clone().observe(late).status, Status::Expired);
        t.heartbeat(&worker("w"), q.lease, late).unwrap();
        assert_eq!(t.lease_expires_at, Some(late + mins(5)));
        t.release(&Outcome::success(None), q.retry_delay, late)
            .unwrap();
        assert_eq!(t.status, Status::Released);
    }

    #[test]
    fn fencing_refuses_another_workers_release_and_heartbeat() {
        let q = queue();
        let mut t = new_task(&q);
        t.retain(&worker("a"), q.lease, t0()).unwrap();
        let before = t.clone();
        assert_eq!(
            t.release(&Outcome::success(None).by(worker("b")), q.retry_delay, t0()),
            Err(Error::NotRetainedBy("b".into()))
        );
        assert_eq!(
            t.heartbeat(&worker("b"), q.lease, t0()),
            Err(Error::NotRetainedBy("b".into()))
        );
        assert_eq!(t, before, "a refused transition changes nothing");
        t.release(&Outcome::success(None).by(worker("a")), q.retry_delay, t0())
            .unwrap();
        assert_eq!(t.status, Status::Released);
    }

    #[test]
    fn heartbeat_extends_the_lease_and_rescue_waits_for_it() {
        let q = queue();
        let mut t = new_task(&q);
        t.retain(&worker("a"), q.lease, t0()).unwrap();
        t.heartbeat(&worker("a"), q.lease, t0() + mins(4)).unwrap();
        assert_eq!(t.lease_expires_at, Some(t0() + mins(9)));
        assert_eq!(
            t.rescue(q.retry_delay, t0() + mins(6)),
            Err(Error::LeaseNotExpired)
        );
        t.rescue(q.retry_delay, t0() + mins(9)).unwrap();
        assert_eq!(t.status, Status::Retry);
        assert_eq!(t.retries, 2);
        assert_eq!(t.result, Some(json!({"error":"lease expired"})));
        assert_eq!(t.delayed_at, Some(t0() + mins(11)));
        assert_eq!(
            t.heartbeat(&worker("a"), q.lease, t0() + mins(9)),
            Err(Error::NotRetained)
        );
    }

    #[test]
    fn rescue_of_the_last_attempt_fails_the_task() {
        let mut q = queue();
        q.retries = 1;
        let mut t = new_task(&q);
        t.retain(&worker("a"), q.lease, t0()).unwrap();
        t.rescue(q.retry_delay, t0() + mins(5)).unwrap();
        assert_eq!(
            (t.status, t.finished_at),
            (Status::Failed, Some(t0() + mins(5)))
        );
    }

    #[test]
    fn rescue_leaves_an_expired_task_expired() {
        let mut q = queue();
        q.ttl = Duration::from_mins(3);
        let mut t = new_task(&q);
        t.retain(&worker("a"), q.lease, t0()).unwrap();
        assert!(!t.is_rescuable(t0() + mins(5)));
        assert_eq!(
            t.rescue(q.retry_delay, t0() + mins(5)),
            Err(Error::LeaseNotExpired)
        );
        assert_eq!(t.clone().observe(t0() + mins(5)).status, Status::Expired);
    }

    #[test]
    fn cleanup_waits_one_ttl_after_the_end() {
        let q = queue();
        let mut t = new_task(&q);
        assert!(
            !t.is_cleanable(q.ttl, t0() + TimeDelta::hours(1)),
            "expired at 1h, kept until 2h"
        );
        assert!(t.is_cleanable(q.ttl, t0() + TimeDelta::hours(2)));
        t.retain(&worker("a"), q.lease, t0()).unwrap();
        t.release(&Outcome::success(None), q.retry_delay, t0() + mins(1))
            .unwrap();
        assert_eq!(t.ended_at(t0() + TimeDelta::hours(5)), Some(t0() + mins(1)));
        assert!(!t.is_cleanable(q.ttl, t0() + mins(60)));
        assert!(t.is_cleanable(q.ttl, t0() + mins(61)));
    }

    #[test]
    fn wire_shape_omits_nulls_and_keeps_payload() {
        let t = Task::create(
            7,
            &queue(),
            TaskMeta::new(Value::Null).validate().unwrap(),
            t0(),
        )
        .unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["payload"], Value::Null);
        assert!(v.as_object().unwrap().contains_key("payload"));
        assert!(!v.as_object().unwrap().contains_key("result"));
        assert_eq!(v["status"], "new");
        assert_eq!(v["retries"], 3);
        assert_eq!(v["created_at"], "2026-01-01T00:00:00Z");
        assert!(!v.as_object().unwrap().contains_key("max_retries"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Retain,
        Succeed,
        Fail,
        Heartbeat,
        Rescue,
        Advance(i64),
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Retain),
            Just(Op::Succeed),
            Just(Op::Fail),
            Just(Op::Heartbeat),
            Just(Op::Rescue),
            (0i64..400).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Once released or failed, no transition brings a task back.
        #[test]
        fn terminal_states_never_come_back(ops in proptest::collection::vec(any_op(), 1..60), retries in 0u32..5) {
            let mut q = queue();
            q.retries = retries;
            let mut t = Task::create(1, &q, TaskMeta::new(json!(1)).validate().unwrap(), t0()).unwrap();
            let mut now = t0();
            let mut ended: Option<Status> = None;
            for op in ops {
                let _ = match op {
                    Op::Retain => t.retain(&worker("w"), q.lease, now),
                    Op::Succeed => t.release(&Outcome::success(None), q.retry_delay, now),
                    Op::Fail => t.release(&Outcome::failure(json!("e")), q.retry_delay, now),
                    Op::Heartbeat => t.heartbeat(&worker("w"), q.lease, now),
                    Op::Rescue => t.rescue(q.retry_delay, now),
                    Op::Advance(s) => { now += TimeDelta::seconds(s); Ok(()) }
                };
                let status = t.clone().observe(now).status;
                if let Some(end) = ended {
                    prop_assert_eq!(status, end);
                }
                if matches!(status, Status::Released | Status::Failed) {
                    ended = Some(status);
                }
                prop_assert!(t.retries <= t.max_retries);
            }
        }

        /// Each further failure waits longer than the one before (for a positive base).
        #[test]
        fn backoff_grows_with_k(base_ms in 1i64..1_000_000, k in 1u32..1_000) {
            let base = Duration::from_millis(base_ms);
            prop_assert!(backoff(base, k + 1) > backoff(base, k));
            prop_assert_eq!(backoff(base, k).as_nanos(), base.as_nanos() * i64::from(k) * i64::from(k));
        }
    }
}
