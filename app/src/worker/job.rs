//! One retained task's run: waiting for a handler slot, running the handler with the lease
//! heartbeated, and releasing the task with the handler's outcome.

use super::{Handler, TaskContext, WorkerReport};
use crate::coalesce::Releaser;
use crate::error::Error;
use crate::manager::Manager;
use futures::FutureExt;
use pgqueue_domain::{Outcome, Task, WorkerName};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) succeeded: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) abandoned: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> WorkerReport {
        WorkerReport {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

/// What every job of one run shares.
pub(super) struct Crew {
    pub(super) manager: Manager,
    pub(super) releaser: Releaser,
    pub(super) worker: WorkerName,
    pub(super) report: Arc<Counters>,
    /// Handler slots (`concurrency` of them).
    pub(super) slots: Arc<Semaphore>,
}

/// One retained task and everything needed to finish it.
pub(super) struct Job {
    pub(super) crew: Arc<Crew>,
    pub(super) handler: Handler,
    pub(super) task: Task,
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Job {
    /// The lease this attempt was given, so heartbeats can be sent at half of it.
    fn lease(&self) -> Option<Duration> {
        let (start, until) = (self.task.started_at()?, self.task.lease_expires_at()?);
        (until - start).to_std().ok().filter(|d| !d.is_zero())
    }

    /// Waits for a free slot, runs the handler in it, frees the slot and the claim permit
    /// `held` as soon as the handler is done (they bound handlers and held tasks, not
    /// releases in flight), then releases the task. The lease is heartbeated throughout,
    /// the wait for a slot included.
    /// A cancel seen at a heartbeat fires the handler's [`TaskContext`] and stops the
    /// heartbeats (a cancelled task gets no further lease); the handler's outcome is then
    /// released as usual: a failure ends the task `cancelled`, a success `released`.
    pub(super) async fn run(self, held: OwnedSemaphorePermit) {
        let id = self.task.id;
        let slots = self.crew.slots.clone();
        let cancel = tokio_util::sync::CancellationToken::new();
        let ctx = TaskContext {
            id,
            queue: self.task.queue.clone(),
            cancel: cancel.clone(),
        };
        let (handler, payload) = (self.handler.clone(), self.task.payload.clone());
        let work = async move {
            // The semaphore is never closed; without a permit the handler still runs.
            let slot = slots.acquire_owned().await.ok();
            if ctx.is_cancelled() {
                // Cancelled while it waited for a slot: do not start the work.
                return Ok(Err("cancelled before it started".to_string()));
            }
            let done = AssertUnwindSafe(handler(payload, ctx)).catch_unwind().await;
            drop(slot);
            done
        };
        tokio::pin!(work);
        let mut beat_every = self.lease().map(|l| l / 2);
        let outcome = loop {
            let beat = async {
                match beat_every {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = &mut work => break match done {
                    // A value the store could not keep fails the attempt, saying why.
                    Ok(Ok(value)) => Outcome::success(Some(value))
                        .unwrap_or_else(|e| Outcome::failure_text(&format!("handler result refused: {e}"))),
                    Ok(Err(text)) => Outcome::failure_text(&text),
                    Err(panic) => Outcome::failure_text(&format!("panic: {}", panic_message(panic.as_ref()))),
                },
                _ = beat => match self.crew.manager.heartbeat(id, self.crew.worker.as_str()).await {
                    Ok(_) => {}
                    Err(Error::Cancelled) => {
                        tracing::info!(task = id, "task cancelled; telling its handler");
                        cancel.cancel();
                        beat_every = None;
                    }
                    Err(Error::Conflict(reason) | Error::NotFound(reason)) => {
                        // Rescued (or deleted) from under us: someone else owns it now.
                        tracing::warn!(task = id, %reason, "heartbeat refused; giving the task up");
                        self.crew.report.abandoned.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => tracing::warn!(task = id, error = %e, "heartbeat failed; will retry"),
                },
            }
        };
        drop(held);
        let failed = outcome.is_failure();
        self.release(outcome.by(self.crew.worker.clone()), failed)
            .await;
    }

    /// Releases with a few retries on storage errors; a refusal is final (the task moved on).
    async fn release(&self, outcome: Outcome, failed: bool) {
        let id = self.task.id;
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=5 {
            match self.crew.releaser.release(id, outcome.clone()).await {
                Ok(_) => {
                    let counter = if failed {
                        &self.crew.report.failed
                    } else {
                        &self.crew.report.succeeded
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(Error::Storage(e)) if attempt < 5 => {
                    tracing::warn!(task = id, error = %e, attempt, "release failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::warn!(task = id, error = %e, "release refused; the lease decides");
                    self.crew.report.abandoned.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}
