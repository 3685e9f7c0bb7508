//! What operators do to tasks: cancel, retry and delete (domain rules of `docs/lifecycle.md`).

use super::Task;
use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::status::{State, Status};
use crate::time::{self, Timestamp};

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// A waiting task ended `cancelled` at once.
    Now,
    /// A retained task was asked to stop; its worker learns it at its next heartbeat, and a
    /// failure release or the lease running out ends it `cancelled`.
    Requested,
}

impl Task {
    /// Cancels it: a waiting task (`new`, `retry`) ends `cancelled` now; a retained one is
    /// asked to stop (asking again keeps the first request). An ended task (expired included)
    /// is refused: `task has ended`.
    pub fn cancel(&mut self, now: Timestamp) -> Result<Cancelled> {
        let now = time::truncate(now);
        match Status::derive(self.state, self.dies_at, now) {
            Status::New | Status::Retry => {
                self.state = State::Cancelled;
                self.finished_at = Some(now);
                self.status = Status::Cancelled;
                Ok(Cancelled::Now)
            }
            Status::Retained => {
                self.cancel_requested_at.get_or_insert(now);
                Ok(Cancelled::Requested)
            }
            _ => Err(Error::TaskEnded),
        }
    }

    /// Retries an ended task that did not do its work (`failed`, `expired`, `cancelled`): it
    /// becomes `new` with the queue's attempts, due now, dying one `ttl` from now; its
    /// worker, result, delay and times are cleared. (Whether its unique key is free is the
    /// store's question: another waiting task may hold it.)
    pub fn retry(&mut self, queue: &Queue, now: Timestamp) -> Result<()> {
        let now = time::truncate(now);
        match Status::derive(self.state, self.dies_at, now) {
            s if s.is_retryable() => {}
            Status::Released => return Err(Error::NotRetryable),
            _ => return Err(Error::NotEnded),
        }
        let failed = queue.retries == 0;
        self.state = if failed { State::Failed } else { State::New };
        self.retries = queue.retries;
        self.max_retries = queue.retries;
        self.delayed_at = None;
        self.started_at = None;
        self.finished_at = failed.then_some(now);
        self.worker = None;
        self.result = None;
        self.lease_expires_at = None;
        self.cancel_requested_at = None;
        self.dies_at = time::add(now, queue.ttl);
        self.status = Status::derive(self.state, self.dies_at, now);
        Ok(())
    }

    /// Whether it may be deleted: anything but a task a worker holds (stored `retained`,
    /// even past its death: the worker may still release it). `task is retained: cancel it
    /// first`.
    pub fn check_deletable(&self) -> Result<()> {
        if self.state == State::Retained {
            return Err(Error::StillRetained);
        }
        Ok(())
    }
}
