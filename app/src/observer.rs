//! Hooks for metrics: the Manager tells an observer what happened to tasks.
//!
//! The core does not depend on a metrics library; the HTTP adapter implements this with
//! Prometheus counters, an embedder with whatever it uses.

use pgqueue_domain::{Limit, Namespace, QueueName, Task};

/// Told about task events as they happen. Every method defaults to doing nothing.
pub trait Observer: Send + Sync {
    /// `n` tasks were created in a queue.
    fn tasks_created(&self, _ns: &Namespace, _queue: &QueueName, _n: usize) {}
    /// A task was retained by a worker.
    fn task_retained(&self, _task: &Task) {}
    /// A retain of a queue got fewer tasks than it asked for because of the queue's `limit`
    /// while tasks were waiting.
    fn retain_limited(&self, _ns: &Namespace, _queue: &QueueName, _limit: Limit) {}
    /// A task was released; `task` is its state after release (released, retry, failed or
    /// cancelled).
    fn task_released(&self, _task: &Task) {}
    /// A task was cancelled (ended now, or asked to stop).
    fn task_cancelled(&self, _task: &Task) {}
    /// `n` ended tasks of a queue were retried by an operator.
    fn tasks_retried(&self, _ns: &Namespace, _queue: &QueueName, _n: u64) {}
    /// `n` tasks of a queue were deleted by an operator.
    fn tasks_deleted(&self, _ns: &Namespace, _queue: &QueueName, _n: u64) {}
}

/// Observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
