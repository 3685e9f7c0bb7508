//! Queues in memory: their policy, listings and status counts.

use crate::state::{State, paginate};
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    EventKind, Namespace, Page, Queue, QueueName, QueuePatch, Status, StatusCount, Task, TaskEvent,
};
use pgqueue_ports::{Listing, StoreError, StoreResult};

fn queue_exists() -> StoreError {
    StoreError::Conflict("queue already exists".into())
}

impl State {
    pub(crate) fn namespaces(&self) -> Vec<Namespace> {
        let mut all: Vec<Namespace> = self
            .queues
            .keys()
            .map(|(ns, _)| ns.clone())
            .chain(self.tickers.keys().map(|(ns, _)| ns.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub(crate) fn create_queue(
        &mut self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let key = (ns.clone(), name.clone());
        if self.queues.contains_key(&key) {
            return Err(queue_exists());
        }
        let queue = Queue::from_patch(ns.clone(), name.clone(), patch);
        self.queues.insert(key, queue.clone());
        Ok(queue)
    }

    pub(crate) fn register_queue(
        &mut self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> Queue {
        let queue = self
            .queues
            .entry((ns.clone(), name.clone()))
            .or_insert_with(|| Queue::new(ns.clone(), name.clone()));
        queue.apply_settings(patch);
        queue.clone()
    }

    pub(crate) fn get_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        self.queues
            .get(&(ns.clone(), name.clone()))
            .cloned()
            .ok_or_else(|| StoreError::not_found("queue", name))
    }

    /// Applies the patch; a rename carries the queue's tasks along.
    pub(crate) fn update_queue(
        &mut self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let key = (ns.clone(), name.clone());
        let mut queue = self.get_queue(ns, name)?;
        queue.apply(patch);
        if queue.rate.is_none() {
            // A rate set again later starts with a full bucket.
            self.buckets.remove(&key);
        }
        if &queue.name != name {
            let new_key = (ns.clone(), queue.name.clone());
            if self.queues.contains_key(&new_key) {
                return Err(queue_exists());
            }
            self.queues.remove(&key);
            if let Some(b) = self.buckets.remove(&key) {
                self.buckets.insert(new_key.clone(), b);
            }
            for task in self
                .tasks
                .values_mut()
                .filter(|t| &t.namespace == ns && &t.queue == name)
            {
                task.queue = queue.name.clone();
            }
            self.queues.insert(new_key, queue.clone());
        } else {
            self.queues.insert(key, queue.clone());
        }
        Ok(queue)
    }

    /// Deletes the queue and its tasks.
    pub(crate) fn delete_queue(&mut self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        let queue = self
            .queues
            .remove(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("queue", name))?;
        self.buckets.remove(&(ns.clone(), name.clone()));
        self.tasks
            .retain(|_, t| !(&t.namespace == ns && &t.queue == name));
        Ok(queue)
    }

    pub(crate) fn list_queues(&self, ns: &Namespace, page: Page) -> Listing<Queue> {
        paginate(
            self.queues.values().filter(|q| &q.namespace == ns).cloned(),
            page,
        )
    }

    /// Every queue of `ns` × every status, zeros included.
    pub(crate) fn queue_statuses(&self, ns: &Namespace, now: DateTime<Utc>) -> Vec<StatusCount> {
        let mut out = Vec::new();
        for queue in self.queues.values().filter(|q| &q.namespace == ns) {
            for status in Status::ALL {
                let count = self
                    .tasks
                    .values()
                    .filter(|t| &t.namespace == ns && t.queue == queue.name)
                    .filter(|t| Status::derive(t.state(), t.dies_at(), now) == status)
                    .count() as u64;
                out.push(StatusCount {
                    queue: queue.name.clone(),
                    status,
                    count,
                });
            }
        }
        out
    }

    /// Deletes the queue's ended tasks now.
    pub(crate) fn clean_queue(
        &mut self,
        ns: &Namespace,
        name: &QueueName,
        now: DateTime<Utc>,
    ) -> Vec<Task> {
        let ended: Vec<i64> = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && &t.queue == name)
            .filter(|t| Status::derive(t.state(), t.dies_at(), now).is_end())
            .map(|t| t.id)
            .collect();
        let removed: Vec<Task> = ended
            .into_iter()
            .filter_map(|id| self.tasks.remove(&id))
            .map(|t| t.observe(now))
            .collect();
        let events = TaskEvent::of_all(&removed, |_| Some(EventKind::Deleted), now);
        self.events.record(events);
        removed
    }
}
