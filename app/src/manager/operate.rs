//! What operators do through the [`Manager`]: cancel, retry and redrive, delete and purge,
//! pause and resume.

use super::Manager;
use crate::error::{Error, Result};
use pgqueue_domain::{Queue, QueueName, Status, Task, TaskId, Ticker, TickerName};

/// The most tasks one redrive retries (and its default).
pub const MAX_REDRIVE: u32 = 10_000;

impl Manager {
    /// Cancels a task: a waiting one ends `cancelled` at once; a retained one is asked to
    /// stop (its worker learns it at its next heartbeat, `task was cancelled`). Conflict when
    /// it has ended.
    pub async fn cancel_task(&self, id: TaskId) -> Result<Task> {
        let task = self.store.cancel_task(&self.namespace, id).await?;
        self.observer.task_cancelled(&task);
        Ok(task)
    }

    /// Retries a failed, expired or cancelled task: `new` again with the queue's attempts.
    /// Conflict when it has not ended, was released, or another waiting task holds its key.
    pub async fn retry_task(&self, id: TaskId) -> Result<Task> {
        let task = self.store.retry_task(&self.namespace, id).await?;
        self.observer.tasks_retried(&self.namespace, &task.queue, 1);
        Ok(task)
    }

    /// Redrive: retries up to `limit` (default and cap 10,000) of the queue's tasks in
    /// `statuses` (default `failed`; only `failed`, `expired`, `cancelled`), oldest first, and
    /// returns how many. Tasks whose unique key another waiting task holds are skipped.
    pub async fn retry_tasks(
        &self,
        queue: &str,
        statuses: &[Status],
        limit: Option<u32>,
    ) -> Result<u64> {
        let queue = QueueName::parse(queue)?;
        let statuses = if statuses.is_empty() {
            vec![Status::Failed]
        } else {
            statuses.to_vec()
        };
        if let Some(s) = statuses.iter().find(|s| !s.is_retryable()) {
            return Err(Error::invalid(
                "status",
                format!("only failed, expired and cancelled tasks are retried, not {s}"),
            ));
        }
        let limit = limit.unwrap_or(MAX_REDRIVE).min(MAX_REDRIVE);
        let n = self
            .store
            .retry_tasks(&self.namespace, &queue, &statuses, limit)
            .await?;
        self.observer.tasks_retried(&self.namespace, &queue, n);
        Ok(n)
    }

    /// Deletes a task that no worker holds; returns it. Conflict for a retained task
    /// (`task is retained: cancel it first`).
    pub async fn delete_task(&self, id: TaskId) -> Result<Task> {
        let task = self.store.delete_task(&self.namespace, id).await?;
        self.observer.tasks_deleted(&self.namespace, &task.queue, 1);
        Ok(task)
    }

    /// Purge: deletes the tasks in `statuses` (required; `retained` refused) of one queue or
    /// of all; returns how many.
    pub async fn purge_tasks(&self, queue: Option<&str>, statuses: &[Status]) -> Result<u64> {
        if statuses.is_empty() {
            return Err(Error::invalid("status", "at least one status is required"));
        }
        if statuses.contains(&Status::Retained) {
            return Err(Error::invalid(
                "status",
                "retained tasks are not purged: cancel them first",
            ));
        }
        let queue = queue.map(QueueName::parse).transpose()?;
        let n = self
            .store
            .purge_tasks(&self.namespace, queue.clone(), statuses)
            .await?;
        if let Some(q) = &queue {
            self.observer.tasks_deleted(&self.namespace, q, n);
        }
        Ok(n)
    }

    /// Pauses a queue: no task of it is retained (also not through "any queue") until it is
    /// resumed; running tasks, expiry, clean-up and tickers feeding it go on. Idempotent.
    pub async fn pause_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self.store.pause_queue(&self.namespace, &name, true).await?)
    }

    /// Resumes a queue; idle workers wake at once.
    pub async fn resume_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self
            .store
            .pause_queue(&self.namespace, &name, false)
            .await?)
    }

    /// Pauses a ticker: it does not fire until resumed.
    pub async fn pause_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self
            .store
            .pause_ticker(&self.namespace, &name, true)
            .await?)
    }

    /// Resumes a ticker: it fires once at the next poll if it matured meanwhile.
    pub async fn resume_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self
            .store
            .pause_ticker(&self.namespace, &name, false)
            .await?)
    }
}
