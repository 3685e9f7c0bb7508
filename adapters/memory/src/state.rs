//! The data held in memory, keyed so that listings come out in their required order.

use pgqueue_domain::{Namespace, Queue, QueueName, Task, TaskId, Ticker, TickerName};
use std::collections::BTreeMap;

/// Everything the store holds. Ordered maps make "ordered by name" and "ordered by id" free.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub queues: BTreeMap<(Namespace, QueueName), Queue>,
    pub tasks: BTreeMap<TaskId, Task>,
    pub tickers: BTreeMap<(Namespace, TickerName), Ticker>,
    pub last_id: TaskId,
}

impl State {
    /// The queue a task belongs to. Tasks never outlive their queue (delete cascades), so
    /// a missing queue is a broken invariant, reported as not found rather than a panic.
    pub fn queue_of(&self, task: &Task) -> Option<&Queue> {
        self.queues
            .get(&(task.namespace.clone(), task.queue.clone()))
    }
}
