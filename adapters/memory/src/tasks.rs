//! Tasks in memory: each operation applies the domain's transition to a copy and stores it
//! only if the rule accepted it, so a refused transition changes nothing.

use crate::state::{State, paginate};
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    Created, EventKind, Namespace, NewTask, Outcome, Queue, QueueName, Task, TaskEvent, TaskFilter,
    TaskId, UniqueKey, WorkerName,
};
use pgqueue_ports::{Listing, StoreError, StoreResult};

impl State {
    /// Finds a task of `ns`, applies `rule` to a copy with its queue and `now`, and stores
    /// the copy only if the rule accepted it.
    pub(crate) fn transition(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        now: DateTime<Utc>,
        rule: impl FnOnce(&mut Task, &Queue, DateTime<Utc>) -> pgqueue_domain::Result<()>,
    ) -> StoreResult<Task> {
        let current = self
            .tasks
            .get(&id)
            .filter(|t| &t.namespace == ns)
            .ok_or_else(|| StoreError::task_not_found(id))?;
        let queue = self
            .queue_of(current)
            .ok_or_else(|| StoreError::task_not_found(id))?;
        let mut task = current.clone();
        rule(&mut task, queue, now)?;
        self.tasks.insert(id, task.clone());
        Ok(task.observe(now))
    }

    /// The waiting or retained task of `queue` that holds `key` at `now`, if any; an expired
    /// holder gives the key up on the way.
    fn key_holder(
        &mut self,
        ns: &Namespace,
        queue: &QueueName,
        key: &UniqueKey,
        now: DateTime<Utc>,
    ) -> Option<Task> {
        let mut holder = None;
        for t in self
            .tasks
            .values_mut()
            .filter(|t| &t.namespace == ns && &t.queue == queue && t.unique_key() == Some(key))
        {
            if t.holds_key(now) {
                holder = Some(t.clone().observe(now));
            } else {
                t.give_up_key(now);
            }
        }
        holder
    }

    /// Creates the tasks, all or nothing, in order; a held unique key (or one repeated in
    /// the batch) answers its task instead.
    pub(crate) fn create_tasks(
        &mut self,
        ns: &Namespace,
        queue: &QueueName,
        tasks: &[NewTask],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Created>> {
        let q = self.get_queue(ns, queue)?;
        let mut out = Vec::with_capacity(tasks.len());
        for new in tasks {
            if let Some(key) = new.unique_key()
                && let Some(holder) = self.key_holder(ns, queue, key, now)
            {
                out.push(Created::Existing(holder));
                continue;
            }
            self.last_id += 1;
            let task = Task::create(self.last_id, &q, new.clone(), now);
            self.tasks.insert(task.id, task.clone());
            self.events
                .record([TaskEvent::of(&task, EventKind::Created, now)]);
            out.push(Created::New(task));
        }
        Ok(out)
    }

    pub(crate) fn get_task(
        &self,
        ns: &Namespace,
        id: TaskId,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.tasks
            .get(&id)
            .filter(|t| &t.namespace == ns)
            .map(|t| t.clone().observe(now))
            .ok_or_else(|| StoreError::task_not_found(id))
    }

    pub(crate) fn list_tasks(
        &self,
        ns: &Namespace,
        filter: &TaskFilter,
        now: DateTime<Utc>,
    ) -> Listing<Task> {
        let matching = self
            .tasks
            .values()
            .filter(|t| &t.namespace == ns)
            .filter(|t| filter.queue.as_ref().is_none_or(|q| &t.queue == q))
            .map(|t| t.clone().observe(now))
            .filter(|t| filter.status.is_none_or(|s| t.status() == s));
        paginate(matching, filter.page)
    }

    pub(crate) fn release_task(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        let task = self.transition(ns, id, now, |task, queue, now| {
            task.release(outcome, queue.retry_delay, now)
        })?;
        let kind = EventKind::of_release(&task);
        self.events.record([TaskEvent::of(&task, kind, now)]);
        Ok(task)
    }

    pub(crate) fn heartbeat(
        &mut self,
        ns: &Namespace,
        id: TaskId,
        worker: &WorkerName,
        now: DateTime<Utc>,
    ) -> StoreResult<Task> {
        self.transition(ns, id, now, |task, queue, now| {
            task.heartbeat(worker, queue.lease, now)
        })
    }

    /// Rescues up to `limit` passed leases in every namespace, by lease end; returned by id.
    pub(crate) fn rescue_leases(
        &mut self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Task>> {
        let mut due: Vec<(DateTime<Utc>, TaskId, Namespace)> = self
            .tasks
            .values()
            .filter(|t| t.is_rescuable(now))
            .filter_map(|t| t.lease_expires_at().map(|l| (l, t.id, t.namespace.clone())))
            .collect();
        due.sort();
        let mut rescued = Vec::new();
        for (_, id, ns) in due.into_iter().take(limit as usize) {
            rescued.push(self.transition(&ns, id, now, |t, q, now| t.rescue(q.retry_delay, now))?);
        }
        rescued.sort_by_key(|t| t.id);
        let events = TaskEvent::of_all(&rescued, |_| Some(EventKind::Rescued), now);
        self.events.record(events);
        Ok(rescued)
    }

    /// Deletes up to `limit` cleanable tasks in every namespace, oldest id first.
    pub(crate) fn clean_up(&mut self, limit: u32, now: DateTime<Utc>) -> u64 {
        let doomed: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| self.queue_of(t).is_some_and(|q| t.is_cleanable(q.ttl, now)))
            .map(|t| t.id)
            .take(limit as usize)
            .collect();
        let removed: Vec<Task> = doomed
            .iter()
            .filter_map(|id| self.tasks.remove(id))
            .map(|t| t.observe(now))
            .collect();
        let events = TaskEvent::of_all(&removed, EventKind::of_clean_up, now);
        self.events.record(events);
        removed.len() as u64
    }
}
