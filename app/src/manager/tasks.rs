//! Task operations of the [`Manager`]: create, read, retain, release, heartbeat.

use super::{MAX_BATCH, Manager};
use crate::error::{Error, Result};
use pgqueue_domain::{
    Created, Duration as WireDuration, NewTask, Outcome, QueueName, Task, TaskFilter, TaskId,
    TaskMeta, WorkerName,
};
use pgqueue_ports::{Listing, Retained};

impl Manager {
    /// Creates one task in `queue`, or answers the waiting or retained task that holds its
    /// unique key (`Created::Existing`).
    pub async fn create_task(&self, queue: &str, meta: TaskMeta) -> Result<Created> {
        let mut tasks = self.create_tasks(queue, vec![meta]).await?;
        tasks
            .pop()
            .ok_or_else(|| Error::Storage("storage created no task".into()))
    }

    /// Creates many tasks in `queue` at once: all or nothing, answers in input order. Tasks
    /// whose unique key is held (or repeated in the batch) answer the one task that holds it.
    pub async fn create_tasks(&self, queue: &str, metas: Vec<TaskMeta>) -> Result<Vec<Created>> {
        let queue = QueueName::parse(queue)?;
        if metas.is_empty() {
            return Err(Error::invalid("tasks", "at least one task is required"));
        }
        if metas.len() > MAX_BATCH {
            return Err(Error::invalid(
                "tasks",
                format!("at most {MAX_BATCH} tasks per batch, got {}", metas.len()),
            ));
        }
        let tasks: Vec<NewTask> = metas
            .into_iter()
            .map(TaskMeta::validate)
            .collect::<std::result::Result<_, _>>()?;
        self.check_delays(&queue, &tasks).await?;
        let created = self
            .store
            .create_tasks(&self.namespace, &queue, &tasks)
            .await?;
        let new = created.iter().filter(|c| c.is_new()).count();
        if new > 0 {
            self.observer.tasks_created(&self.namespace, &queue, new);
        }
        Ok(created)
    }

    /// Refuses delays that have passed on the storage's clock, and delays so far away that
    /// the task's death (`delayed_at + ttl`) could not be written as RFC 3339. Only delayed
    /// tasks pay for asking the clock, and only delays within one maximal `ttl` of year 9999
    /// for reading the queue's `ttl`.
    async fn check_delays(&self, queue: &QueueName, tasks: &[NewTask]) -> Result<()> {
        let Some(latest) = tasks.iter().filter_map(NewTask::delayed_at).max() else {
            return Ok(());
        };
        let now = self.store.now().await?;
        for t in tasks {
            t.check_delay(now)?;
        }
        let longest_ttl = WireDuration::from_nanos(i64::MAX);
        if pgqueue_domain::time::add(latest, longest_ttl) >= pgqueue_domain::MAX_TIMESTAMP {
            let q = self.store.get_queue(&self.namespace, queue).await?;
            pgqueue_domain::time::add_checked("delayed_at", latest.max(now), q.ttl)?;
        }
        Ok(())
    }

    /// The task with this id.
    pub async fn get_task(&self, id: TaskId) -> Result<Task> {
        Ok(self.store.get_task(&self.namespace, id).await?)
    }

    /// Tasks ordered by id, filtered by queue and status.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Listing<Task>> {
        Ok(self.store.list_tasks(&self.namespace, filter).await?)
    }

    /// Retains the oldest available task of the given queues (none given: any queue of the
    /// namespace) for `worker`; `None` when nothing is available. Names that match no queue
    /// simply match nothing.
    pub async fn next_task(&self, worker: &str, queues: &[&str]) -> Result<Option<Task>> {
        if let Some(group) = &self.group_commit {
            let worker = WorkerName::parse(worker)?;
            let queues: Vec<QueueName> = queues
                .iter()
                .map(|q| QueueName::parse(q))
                .collect::<std::result::Result<_, _>>()?;
            return group.retains.retain(worker, queues).await;
        }
        Ok(self.next_tasks(worker, queues, 1).await?.pop())
    }

    /// Retains up to `limit` tasks at once (oldest first), for workers that buffer.
    pub async fn next_tasks(&self, worker: &str, queues: &[&str], limit: u32) -> Result<Vec<Task>> {
        let worker = WorkerName::parse(worker)?;
        let queues: Vec<QueueName> = queues
            .iter()
            .map(|q| QueueName::parse(q))
            .collect::<std::result::Result<_, _>>()?;
        self.retain(&worker, &queues, limit).await
    }

    /// Like [`Manager::next_task`] on one queue, which must exist (not found otherwise).
    pub async fn next_task_from(&self, worker: &str, queue: &str) -> Result<Option<Task>> {
        let worker = WorkerName::parse(worker)?;
        let queue = QueueName::parse(queue)?;
        let task = match &self.group_commit {
            Some(group) => group.retains.retain(worker, vec![queue.clone()]).await?,
            None => self
                .retain(&worker, std::slice::from_ref(&queue), 1)
                .await?
                .pop(),
        };
        if task.is_none() {
            // Only the empty answer pays for telling "nothing available" from "no such queue".
            self.store.get_queue(&self.namespace, &queue).await?;
        }
        Ok(task)
    }

    async fn retain(
        &self,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> Result<Vec<Task>> {
        Ok(self.claim(worker, queues, limit).await?.tasks)
    }

    /// Retains up to `limit` tasks and says which queue limits held the claim back (the
    /// worker runtime sleeps on that instead of asking again at once).
    pub(crate) async fn claim(
        &self,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> Result<Retained> {
        let retained = self
            .store
            .retain_tasks(&self.namespace, worker, queues, limit.max(1))
            .await?;
        Ok(self.observe_retained(retained))
    }

    fn observe_retained(&self, retained: Retained) -> Retained {
        for t in &retained.tasks {
            self.observer.task_retained(t);
        }
        for l in &retained.limited {
            self.observer
                .retain_limited(&self.namespace, &l.queue, l.limit);
        }
        retained
    }

    /// Releases a retained task with its outcome; returns it with its status after release.
    pub async fn release_task(&self, id: TaskId, outcome: Outcome) -> Result<Task> {
        if let Some(group) = &self.group_commit {
            return group.releases.release(id, outcome).await;
        }
        let task = self
            .store
            .release_task(&self.namespace, id, &outcome)
            .await?;
        self.observer.task_released(&task);
        Ok(task)
    }

    /// Retains one task for each of `workers` in one claim, oldest first: task `i` of the
    /// answer is `workers[i]`'s; fewer tasks than workers when fewer are available.
    pub async fn retain_for(
        &self,
        workers: &[WorkerName],
        queues: &[QueueName],
    ) -> Result<Vec<Task>> {
        let retained = self
            .store
            .retain_tasks_for(&self.namespace, workers, queues)
            .await?;
        Ok(self.observe_retained(retained).tasks)
    }

    /// Releases many tasks; each gets its own result, in order.
    pub async fn release_tasks(&self, releases: &[(TaskId, Outcome)]) -> Result<Vec<Result<Task>>> {
        let results = self.store.release_tasks(&self.namespace, releases).await?;
        Ok(results
            .into_iter()
            .map(|r| {
                let r = r.map_err(Error::from);
                if let Ok(t) = &r {
                    self.observer.task_released(t);
                }
                r
            })
            .collect())
    }

    /// Extends `worker`'s lease on a task it holds.
    pub async fn heartbeat(&self, id: TaskId, worker: &str) -> Result<Task> {
        let worker = WorkerName::parse(worker)?;
        Ok(self.store.heartbeat(&self.namespace, id, &worker).await?)
    }
}
