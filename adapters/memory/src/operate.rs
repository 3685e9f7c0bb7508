//! What operators do in memory: cancel, retry, redrive, delete, purge, pause and resume.

use crate::state::State;
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    EventKind, Namespace, Queue, QueueName, Status, Task, TaskEvent, TaskId, Ticker, TickerName,
};
use pgqueue_ports::{StoreError, StoreResult};

/// The refusal of a retry whose unique key another waiting task holds.
pub(crate) fn key_taken() -> StoreError {
    StoreError::Conflict("task's unique_key is held by another waiting task".into())
}

impl State {
    pub(crate) fn cancel_task(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let task = self.transition(ns, id, now, |t, _, now| t.cancel(now).map(|_| ()))?;
        let events = TaskEvent::of_all([&task], EventKind::of_cancel, now);
        self.events.record(events);
        Ok(task)
    }

    /// Whether another task of `task`'s queue holds its unique key at `now`.
    fn key_held_by_another(&self, task: &Task, now: DateTime<Utc>) -> bool {
        task.unique_key().is_some_and(|key| {
            self.tasks.values().any(|o| {
                o.id != task.id
                    && o.namespace == task.namespace
                    && o.queue == task.queue
                    && o.unique_key() == Some(key)
                    && o.holds_key(now)
            })
        })
    }

    pub(crate) fn retry_task(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let current = self.get_task(ns, id, now)?;
        let queue = self
            .queue_of(&current)
            .cloned()
            .ok_or_else(|| StoreError::task_not_found(id))?;
        let mut task = current;
        task.retry(&queue, now)?;
        if task.holds_key(now) {
            if self.key_held_by_another(&task, now) {
                return Err(key_taken());
            }
            // An expired task of the queue with the key gives it up, as to a create.
            for other in self.tasks.values_mut().filter(|o| {
                o.id != id
                    && o.namespace == task.namespace
                    && o.queue == task.queue
                    && o.unique_key() == task.unique_key()
            }) {
                other.give_up_key(now);
            }
        }
        self.tasks.insert(id, task.clone());
        self.events
            .record([TaskEvent::of(&task, EventKind::Retry, now)]);
        Ok(task)
    }

    pub(crate) fn retry_tasks(
        &mut self,
        ns: &Namespace,
        queue: &QueueName,
        statuses: &[Status],
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.get_queue(ns, queue)?;
        let candidates: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && &t.queue == queue)
            .filter(|t| statuses.contains(&Status::derive(t.state(), t.dies_at(), now)))
            .map(|t| t.id)
            .collect();
        let mut retried = 0u64;
        for id in candidates {
            if retried >= u64::from(limit) {
                break;
            }
            match self.retry_task(ns, id, now) {
                Ok(_) => retried += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(retried)
    }

    pub(crate) fn delete_task(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let task = self.get_task(ns, id, now)?;
        task.check_deletable()?;
        self.tasks.remove(&id);
        self.events
            .record([TaskEvent::of(&task, EventKind::Deleted, now)]);
        Ok(task)
    }

    pub(crate) fn purge_tasks(
        &mut self,
        ns: &Namespace,
        queue: Option<&QueueName>,
        statuses: &[Status],
        now: DateTime<Utc>,
    ) -> u64 {
        let doomed: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && queue.is_none_or(|q| &t.queue == q))
            .filter(|t| t.check_deletable().is_ok())
            .filter(|t| statuses.contains(&Status::derive(t.state(), t.dies_at(), now)))
            .map(|t| t.id)
            .collect();
        let removed: Vec<Task> = doomed
            .iter()
            .filter_map(|id| self.tasks.remove(id))
            .map(|t| t.observe(now))
            .collect();
        let events = TaskEvent::of_all(&removed, |_| Some(EventKind::Deleted), now);
        self.events.record(events);
        removed.len() as u64
    }

    pub(crate) fn pause_queue(
        &mut self,
        ns: &Namespace,
        name: &QueueName,
        paused: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Queue> {
        let queue = self
            .queues
            .get_mut(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("queue", name))?;
        let kind = if paused {
            queue.pause(now);
            EventKind::Paused
        } else {
            queue.resume();
            EventKind::Resumed
        };
        let queue = queue.clone();
        self.events
            .record([TaskEvent::of_queue(ns, name, kind, now)]);
        Ok(queue)
    }

    /// Whether retains skip the queue `name` of `ns`.
    pub(crate) fn is_paused(&self, ns: &Namespace, name: &QueueName) -> bool {
        self.queues
            .get(&(ns.clone(), name.clone()))
            .is_some_and(|q| q.paused_at.is_some())
    }

    pub(crate) fn pause_ticker(
        &mut self,
        ns: &Namespace,
        name: &TickerName,
        paused: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<Ticker> {
        let ticker = self
            .tickers
            .get_mut(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("ticker", name))?;
        if paused {
            ticker.pause(now);
        } else {
            ticker.resume();
        }
        Ok(ticker.clone())
    }
}
