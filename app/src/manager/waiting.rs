//! Retains that wait: a long-polling HTTP worker asks once and is answered when a task
//! arrives or its wait is over, instead of polling.

use super::Manager;
use crate::error::{Error, Result};
use pgqueue_domain::{QueueName, Task, WorkerName};
use pgqueue_ports::{Retained, Wakeup};
use std::future::Future;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// The longest a retain may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The most tasks one retain may ask for.
pub const MAX_RETAIN: u32 = 1_000;

/// How often a waiting retain looks again without a wake-up: delays and backoffs end, and
/// slots of limited queues free up, without one.
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// How soon a claim held back by `max_running` looks again when nothing else wakes it: a
/// slot freed by another process is found within this.
const LIMITED_POLL: Duration = Duration::from_millis(50);

/// How long a claim that queue limits held back should wait before looking again (at most
/// `cap`): until the soonest next token of a rate, else [`LIMITED_POLL`]. None when no limit
/// held it back. The worker runtime and waiting retains both sleep on this.
pub(crate) fn held_back_for(retained: &Retained, cap: Duration) -> Option<Duration> {
    if retained.limited.is_empty() {
        return None;
    }
    let wait = retained
        .limited
        .iter()
        .filter_map(|l| l.retry_in.map(|d| d.to_std()))
        .min()
        .unwrap_or(LIMITED_POLL);
    Some(wait.clamp(Duration::from_millis(1), cap.max(Duration::from_millis(1))))
}

impl Manager {
    /// Retains up to `limit` tasks (1 to [`MAX_RETAIN`]) of `queues` (empty: any queue) for
    /// `worker`; when none is available, waits up to `wait` (at most [`MAX_WAIT`]) for one,
    /// woken by the store's signal like the worker runtime, and answers what it got then
    /// (possibly nothing). `stop` (a server shutting down) ends the wait early with
    /// nothing; it never interrupts a claim in flight, so no task is retained for a caller
    /// that will not hear of it. A single-task retain goes through group commit when the
    /// manager has it.
    pub async fn retain_waiting(
        &self,
        worker: &str,
        queues: &[&str],
        limit: u32,
        wait: Duration,
        stop: impl Future<Output = ()> + Send,
    ) -> Result<Vec<Task>> {
        let worker = WorkerName::parse(worker)?;
        let queues: Vec<QueueName> = queues
            .iter()
            .map(|q| QueueName::parse(q))
            .collect::<std::result::Result<_, _>>()?;
        check_retain(limit, wait)?;
        let deadline = Instant::now() + wait;
        // Subscribed before the first look, so a task created after it wakes us.
        let mut wakeups = self.store.signal().subscribe();
        tokio::pin!(stop);
        loop {
            let (tasks, retry) = self.look(&worker, &queues, limit).await?;
            let now = Instant::now();
            if !tasks.is_empty() || now >= deadline {
                return Ok(tasks);
            }
            let until = deadline.min(now + retry);
            loop {
                tokio::select! {
                    _ = &mut stop => return Ok(Vec::new()),
                    _ = tokio::time::sleep_until(until) => break,
                    w = wakeups.recv() => if self.concerns(&w, &queues) { break },
                }
            }
        }
    }

    /// One claim, and how long to wait before the next if it came back empty.
    async fn look(
        &self,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> Result<(Vec<Task>, Duration)> {
        if limit == 1
            && let Some(group) = &self.group_commit
        {
            let task = group
                .retains
                .retain(worker.clone(), queues.to_vec())
                .await?;
            return Ok((task.into_iter().collect(), SAFETY_POLL));
        }
        let retained = self.claim(worker, queues, limit).await?;
        let retry = held_back_for(&retained, SAFETY_POLL).unwrap_or(SAFETY_POLL);
        Ok((retained.tasks, retry))
    }

    /// Whether a wake-up may concern a retain of `queues` (empty: any queue) in this
    /// namespace; the worker runtime asks the same.
    pub(crate) fn concerns(
        &self,
        w: &std::result::Result<Wakeup, RecvError>,
        queues: &[QueueName],
    ) -> bool {
        match w {
            Ok(Wakeup::Task { namespace, queue }) => {
                namespace == &self.namespace && (queues.is_empty() || queues.contains(queue))
            }
            Ok(Wakeup::Ticker { .. }) => false,
            Ok(Wakeup::Resync) | Err(RecvError::Lagged(_)) => true,
            // No more wake-ups: the safety poll still runs.
            Err(RecvError::Closed) => false,
        }
    }
}

/// Checks a retain's `limit` and `wait`.
fn check_retain(limit: u32, wait: Duration) -> Result<()> {
    if !(1..=MAX_RETAIN).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_RETAIN}, got {limit}"),
        ));
    }
    if wait > MAX_WAIT {
        return Err(Error::invalid(
            "wait",
            format!("must be at most 60s, got {wait:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgqueue_domain::{Limit, QueueName};
    use pgqueue_ports::Limited;

    fn limited(retry_in: Option<pgqueue_domain::Duration>) -> Limited {
        Limited {
            queue: QueueName::parse("q").unwrap(),
            limit: if retry_in.is_some() {
                Limit::Rate
            } else {
                Limit::MaxRunning
            },
            retry_in,
        }
    }

    #[test]
    fn a_held_back_claim_waits_for_the_soonest_token_or_the_short_poll_within_the_cap() {
        let cap = Duration::from_secs(1);
        assert_eq!(
            held_back_for(&Retained::default(), cap),
            None,
            "not held back"
        );
        let slots = Retained {
            tasks: Vec::new(),
            limited: vec![limited(None)],
        };
        assert_eq!(held_back_for(&slots, cap), Some(LIMITED_POLL));
        let tokens = Retained {
            tasks: Vec::new(),
            limited: vec![
                limited(Some(pgqueue_domain::Duration::from_millis(300))),
                limited(None),
                limited(Some(pgqueue_domain::Duration::from_millis(20))),
            ],
        };
        assert_eq!(held_back_for(&tokens, cap), Some(Duration::from_millis(20)));
        let slow = Retained {
            tasks: Vec::new(),
            limited: vec![limited(Some(pgqueue_domain::Duration::from_secs(30)))],
        };
        assert_eq!(held_back_for(&slow, cap), Some(cap), "never past the cap");
    }

    #[test]
    fn retains_ask_for_1_to_1000_tasks_and_wait_at_most_a_minute() {
        assert!(check_retain(1, Duration::ZERO).is_ok());
        assert!(check_retain(MAX_RETAIN, MAX_WAIT).is_ok());
        assert!(check_retain(0, Duration::ZERO).is_err());
        assert!(check_retain(MAX_RETAIN + 1, Duration::ZERO).is_err());
        assert!(check_retain(1, MAX_WAIT + Duration::from_millis(1)).is_err());
    }
}
