//! Task statuses: the one a task is stored in, and the one users see.
//!
//! A task is stored in a lifecycle [`State`]; what users see is its [`Status`], derived at read
//! time from the state, `dies_at` and `now`. Expiry therefore needs no write: a waiting task
//! whose `dies_at` has passed simply reads as `expired`.

use crate::error::{Error, Result};
use crate::name::QueueName;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a task is stored as. `expired` is never stored: it is derived.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, never attempted.
    #[default]
    New,
    /// Held by a worker.
    Retained,
    /// Failed at least once, waiting for its backoff.
    Retry,
    /// Finished successfully (terminal).
    Released,
    /// Its last allowed attempt failed (terminal).
    Failed,
    /// Stopped by an operator (terminal).
    Cancelled,
}

impl State {
    /// The stored name (also the SQL value).
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Retained => "retained",
            State::Retry => "retry",
            State::Released => "released",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "new" => Ok(State::New),
            "retained" => Ok(State::Retained),
            "retry" => Ok(State::Retry),
            "released" => Ok(State::Released),
            "failed" => Ok(State::Failed),
            "cancelled" => Ok(State::Cancelled),
            other => Err(Error::InvalidStatus(other.to_string())),
        }
    }

    /// Whether the task has finished for good (released, failed or cancelled).
    pub fn is_finished(self) -> bool {
        matches!(self, State::Released | State::Failed | State::Cancelled)
    }
}

/// What users see of a task, with the precedence of `docs/lifecycle.md`:
/// `released` > `failed` > `cancelled` > `expired` > `retained` > `retry` > `new`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never attempted; waiting (maybe delayed).
    #[default]
    New,
    /// Held by a worker, attempt in progress.
    Retained,
    /// An attempt failed; attempts remain; waiting for its backoff.
    Retry,
    /// Finished successfully.
    Released,
    /// Its last allowed attempt failed.
    Failed,
    /// Its `dies_at` passed before it finished.
    Expired,
    /// Stopped by an operator.
    Cancelled,
}

impl Status {
    /// All seven, in a stable order (used to report zero counts).
    pub const ALL: [Status; 7] = [
        Status::New,
        Status::Retained,
        Status::Retry,
        Status::Released,
        Status::Failed,
        Status::Expired,
        Status::Cancelled,
    ];

    /// Derives the visible status of a task stored in `state` that dies at `dies_at`.
    /// A task that has not finished is expired from `dies_at` on (inclusive).
    pub fn derive(state: State, dies_at: Timestamp, now: Timestamp) -> Status {
        match state {
            State::Released => Status::Released,
            State::Failed => Status::Failed,
            State::Cancelled => Status::Cancelled,
            _ if now >= dies_at => Status::Expired,
            State::Retained => Status::Retained,
            State::Retry => Status::Retry,
            State::New => Status::New,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Retained => "retained",
            Status::Retry => "retry",
            Status::Released => "released",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name (`?status=` filters); unknown names are refused.
    pub fn parse(s: &str) -> Result<Self> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s.trim().to_lowercase())
            .ok_or_else(|| Error::InvalidStatus(s.to_string()))
    }

    /// Whether a task in this status is done with (released, failed, cancelled or expired):
    /// what clean-up removes.
    pub fn is_end(self) -> bool {
        matches!(
            self,
            Status::Released | Status::Failed | Status::Expired | Status::Cancelled
        )
    }

    /// Whether a task in this status may be retried by an operator (failed, expired or
    /// cancelled: the ends that did not do the work).
    pub fn is_retryable(self) -> bool {
        matches!(self, Status::Failed | Status::Expired | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// How many tasks of one queue are in one status (metrics, `queue_statuses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    /// The queue.
    pub queue: QueueName,
    /// The status.
    pub status: Status,
    /// How many of the queue's tasks are in it now.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn waiting_and_running_tasks_expire_at_dies_at() {
        let dies = t0();
        for state in [State::New, State::Retry, State::Retained] {
            assert_eq!(
                Status::derive(state, dies, dies - TimeDelta::microseconds(1)).as_str(),
                state.as_str()
            );
            assert_eq!(Status::derive(state, dies, dies), Status::Expired);
        }
    }

    #[test]
    fn finished_tasks_never_expire() {
        let later = t0() + TimeDelta::days(365);
        assert_eq!(
            Status::derive(State::Released, t0(), later),
            Status::Released
        );
        assert_eq!(Status::derive(State::Failed, t0(), later), Status::Failed);
    }

    #[test]
    fn status_names_parse_and_refuse_unknown() {
        assert_eq!(Status::parse("retry").unwrap(), Status::Retry);
        assert_eq!(Status::parse("Expired").unwrap(), Status::Expired);
        assert_eq!(
            Status::parse("done").unwrap_err().to_string(),
            "invalid status \"done\": expected one of new, retained, retry, released, failed, expired, cancelled"
        );
        for st in Status::ALL {
            assert_eq!(Status::parse(st.as_str()).unwrap(), st);
        }
    }

    fn any_state() -> impl Strategy<Value = State> {
        prop_oneof![
            Just(State::New),
            Just(State::Retained),
            Just(State::Retry),
            Just(State::Released),
            Just(State::Failed),
            Just(State::Cancelled)
        ]
    }

    proptest! {
        /// Derivation is total and follows the precedence: finished wins over expired, expired
        /// wins over every waiting or running state.
        #[test]
        fn derivation_is_total_and_ordered(state in any_state(), offset in -10_000i64..10_000) {
            let now = t0() + TimeDelta::seconds(offset);
            let status = Status::derive(state, t0(), now);
            match state {
                State::Released => prop_assert_eq!(status, Status::Released),
                State::Failed => prop_assert_eq!(status, Status::Failed),
                State::Cancelled => prop_assert_eq!(status, Status::Cancelled),
                _ if offset >= 0 => prop_assert_eq!(status, Status::Expired),
                _ => prop_assert_eq!(status.as_str(), state.as_str()),
            }
        }
    }
}
