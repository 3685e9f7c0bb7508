//! The data held in memory, keyed so that listings come out in their required order.

use crate::events::EventLog;
use crate::tokens::Tokens;
use pgqueue_domain::{Bucket, Namespace, Page, Queue, QueueName, Task, TaskId, Ticker, TickerName};
use pgqueue_ports::Listing;
use std::collections::BTreeMap;

/// Everything the store holds. Ordered maps make "ordered by name" and "ordered by id" free.
/// Its operations (in `queues.rs`, `tasks.rs`, `tickers.rs`) run under the store's one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub queues: BTreeMap<(Namespace, QueueName), Queue>,
    pub tasks: BTreeMap<TaskId, Task>,
    pub tickers: BTreeMap<(Namespace, TickerName), Ticker>,
    /// The token buckets of queues with a rate, as their last claim left them.
    pub buckets: BTreeMap<(Namespace, QueueName), Bucket>,
    pub last_id: TaskId,
    /// Every change's events, numbered in the order they happened.
    pub events: EventLog,
    /// API tokens.
    pub tokens: Tokens,
}

impl State {
    /// The queue a task belongs to. Tasks never outlive their queue (delete cascades), so
    /// a missing queue is a broken invariant, reported as not found rather than a panic.
    pub fn queue_of(&self, task: &Task) -> Option<&Queue> {
        self.queues
            .get(&(task.namespace.clone(), task.queue.clone()))
    }
}

/// One page of an ordered iterator, with the total count.
pub(crate) fn paginate<T>(items: impl Iterator<Item = T>, page: Page) -> Listing<T> {
    let all: Vec<T> = items.collect();
    let count = all.len() as u64;
    let items = all
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit()).unwrap_or(usize::MAX))
        .collect();
    Listing { count, items }
}
