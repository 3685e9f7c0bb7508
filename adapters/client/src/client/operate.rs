//! Operating tasks and queues: cancel, retry and redrive, delete and purge, pause.

use super::Client;
use crate::error::ClientError;
use crate::types::CountWire;
use pgqueue_domain::{Queue, Status, TaskId, TaskView, Ticker};
use reqwest::Method;

impl Client {
    // ---- operating ----

    /// Cancels a task: a waiting one ends `cancelled` now, a retained one is asked to stop.
    pub async fn cancel_task(&self, id: TaskId) -> Result<TaskView, ClientError> {
        self.call(self.request(Method::POST, &["task", &id.to_string(), "cancel"], &[])?)
            .await
    }

    /// Retries a failed, expired or cancelled task.
    pub async fn retry_task(&self, id: TaskId) -> Result<TaskView, ClientError> {
        self.call(self.request(Method::POST, &["task", &id.to_string(), "retry"], &[])?)
            .await
    }

    /// Redrive: retries up to `limit` of the queue's tasks in `statuses` (none: `failed`);
    /// returns how many.
    pub async fn retry_tasks(
        &self,
        queue: &str,
        statuses: &[Status],
        limit: Option<u64>,
    ) -> Result<u64, ClientError> {
        let mut q: Vec<(&str, String)> = statuses
            .iter()
            .map(|s| ("status", s.as_str().to_string()))
            .collect();
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        let counted: CountWire = self
            .call(self.request(Method::POST, &["queue", queue, "retry"], &q)?)
            .await?;
        Ok(counted.count)
    }

    /// Deletes a task no worker holds; returns it.
    pub async fn delete_task(&self, id: TaskId) -> Result<TaskView, ClientError> {
        self.call(self.request(Method::DELETE, &["task", &id.to_string()], &[])?)
            .await
    }

    /// Purge: deletes the tasks in `statuses` (of `queue`, or of all); returns how many.
    pub async fn purge_tasks(
        &self,
        statuses: &[Status],
        queue: Option<&str>,
    ) -> Result<u64, ClientError> {
        let mut q: Vec<(&str, String)> = statuses
            .iter()
            .map(|s| ("status", s.as_str().to_string()))
            .collect();
        if let Some(queue) = queue {
            q.push(("queue", queue.to_string()));
        }
        let counted: CountWire = self
            .call(self.request(Method::DELETE, &["task"], &q)?)
            .await?;
        Ok(counted.count)
    }

    /// Pauses a queue (`true`) or resumes it.
    pub async fn pause_queue(&self, name: &str, paused: bool) -> Result<Queue, ClientError> {
        let verb = if paused { "pause" } else { "resume" };
        self.call(self.request(Method::POST, &["queue", name, verb], &[])?)
            .await
    }

    /// Pauses a ticker (`true`) or resumes it.
    pub async fn pause_ticker(&self, name: &str, paused: bool) -> Result<Ticker, ClientError> {
        let verb = if paused { "pause" } else { "resume" };
        self.call(self.request(Method::POST, &["ticker", name, verb], &[])?)
            .await
    }
}
