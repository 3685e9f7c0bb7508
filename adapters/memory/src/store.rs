//! The `Store` port over a mutex-guarded [`State`]: each method takes the lock once, runs the
//! state's operation at the store's `now`, and sends wake-ups after the lock is released.

use crate::state::State;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    Created, Duration, EventId, Namespace, NewTask, Outcome, Page, Queue, QueueName, QueuePatch,
    Status, StatusCount, Task, TaskFilter, TaskId, Ticker, TickerName, TickerPatch, WorkerName,
    time,
};
use pgqueue_ports::{
    Clock, EventPage, FiredTicker, Listing, Retained, Signal, StorageClock, Store, StoreResult,
    TickerScope, Wakeup,
};
use std::sync::{Arc, Mutex, MutexGuard};

/// An in-memory store. Clones share the same data.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    signal: Signal,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Arc::new(StorageClock))
    }
}

impl MemoryStore {
    /// An empty store whose time comes from `clock` (`StorageClock` and `SystemClock` both
    /// mean this process's clock; `ManualClock` pins it).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
            signal: Signal::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied rule behind (rules are
        // applied to copies and written back whole), so a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn instant(&self) -> DateTime<Utc> {
        time::truncate(self.clock.now().unwrap_or_else(Utc::now))
    }

    fn wake_ticker(&self, ns: &Namespace) {
        self.signal.send(Wakeup::Ticker {
            namespace: ns.clone(),
        });
    }

    fn wake_queues<'a>(&self, tasks: impl Iterator<Item = &'a Task>) {
        let mut woken: Vec<(Namespace, QueueName)> = tasks
            .map(|t| (t.namespace.clone(), t.queue.clone()))
            .collect();
        woken.sort();
        woken.dedup();
        for (namespace, queue) in woken {
            self.signal.send(Wakeup::Task { namespace, queue });
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        Ok(self.instant())
    }

    fn signal(&self) -> Signal {
        self.signal.clone()
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<Namespace>> {
        Ok(self.lock().namespaces())
    }

    async fn create_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        self.lock().create_queue(ns, name, patch)
    }

    async fn register_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        Ok(self.lock().register_queue(ns, name, patch))
    }

    async fn get_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        self.lock().get_queue(ns, name)
    }

    async fn update_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        self.lock().update_queue(ns, name, patch)
    }

    async fn delete_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        self.lock().delete_queue(ns, name)
    }

    async fn list_queues(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Queue>> {
        Ok(self.lock().list_queues(ns, page))
    }

    async fn queue_statuses(&self, ns: &Namespace) -> StoreResult<Vec<StatusCount>> {
        let now = self.instant();
        Ok(self.lock().queue_statuses(ns, now))
    }

    async fn clean_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        Ok(self.lock().clean_queue(ns, name, now))
    }

    async fn create_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        tasks: &[NewTask],
    ) -> StoreResult<Vec<Created>> {
        let now = self.instant();
        let created = self.lock().create_tasks(ns, queue, tasks, now)?;
        self.wake_queues(created.iter().filter(|c| c.is_new()).map(Created::task));
        Ok(created)
    }

    async fn get_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.instant();
        self.lock().get_task(ns, id, now)
    }

    async fn list_tasks(&self, ns: &Namespace, filter: &TaskFilter) -> StoreResult<Listing<Task>> {
        let now = self.instant();
        Ok(self.lock().list_tasks(ns, filter, now))
    }

    async fn retain_tasks(
        &self,
        ns: &Namespace,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> StoreResult<Retained> {
        let now = self.instant();
        let workers = vec![worker; limit as usize];
        self.lock().retain_tasks(ns, &workers, queues, now)
    }

    async fn retain_tasks_for(
        &self,
        ns: &Namespace,
        workers: &[WorkerName],
        queues: &[QueueName],
    ) -> StoreResult<Retained> {
        let now = self.instant();
        let workers: Vec<&WorkerName> = workers.iter().collect();
        self.lock().retain_tasks(ns, &workers, queues, now)
    }

    async fn release_task(
        &self,
        ns: &Namespace,
        id: TaskId,
        outcome: &Outcome,
    ) -> StoreResult<Task> {
        let now = self.instant();
        self.lock().release_task(ns, id, outcome, now)
    }

    async fn heartbeat(
        &self,
        ns: &Namespace,
        id: TaskId,
        worker: &WorkerName,
    ) -> StoreResult<Task> {
        let now = self.instant();
        self.lock().heartbeat(ns, id, worker, now)
    }

    async fn cancel_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.instant();
        self.lock().cancel_task(ns, id, now)
    }

    async fn retry_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.instant();
        let task = self.lock().retry_task(ns, id, now)?;
        self.wake_queues(std::iter::once(&task));
        Ok(task)
    }

    async fn retry_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        statuses: &[Status],
        limit: u32,
    ) -> StoreResult<u64> {
        let now = self.instant();
        let n = self.lock().retry_tasks(ns, queue, statuses, limit, now)?;
        if n > 0 {
            self.signal.send(Wakeup::Task {
                namespace: ns.clone(),
                queue: queue.clone(),
            });
        }
        Ok(n)
    }

    async fn delete_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.instant();
        self.lock().delete_task(ns, id, now)
    }

    async fn purge_tasks(
        &self,
        ns: &Namespace,
        queue: Option<QueueName>,
        statuses: &[Status],
    ) -> StoreResult<u64> {
        let now = self.instant();
        Ok(self.lock().purge_tasks(ns, queue.as_ref(), statuses, now))
    }

    async fn pause_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        paused: bool,
    ) -> StoreResult<Queue> {
        let now = self.instant();
        let queue = self.lock().pause_queue(ns, name, paused, now)?;
        if !paused {
            self.signal.send(Wakeup::Task {
                namespace: ns.clone(),
                queue: name.clone(),
            });
        }
        Ok(queue)
    }

    async fn pause_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        paused: bool,
    ) -> StoreResult<Ticker> {
        let now = self.instant();
        let ticker = self.lock().pause_ticker(ns, name, paused, now)?;
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn rescue_leases(&self, limit: u32) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        let rescued = self.lock().rescue_leases(limit, now)?;
        self.wake_queues(rescued.iter());
        Ok(rescued)
    }

    async fn clean_up(&self, limit: u32) -> StoreResult<u64> {
        let now = self.instant();
        Ok(self.lock().clean_up(limit, now))
    }

    async fn read_events(
        &self,
        ns: &Namespace,
        last: Option<EventId>,
        limit: u32,
    ) -> StoreResult<EventPage> {
        Ok(self.lock().events.read(ns, last, limit))
    }

    async fn prune_events(&self, retention: Duration) -> StoreResult<u64> {
        let before = time::subtract(self.instant(), retention);
        Ok(self.lock().events.prune(before))
    }

    async fn create_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.instant();
        let ticker = self.lock().create_ticker(ns, name, patch, now)?;
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn register_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.instant();
        let ticker = self.lock().register_ticker(ns, name, patch, now)?;
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn get_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.lock().get_ticker(ns, name)
    }

    async fn update_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.instant();
        let ticker = self.lock().update_ticker(ns, name, patch, now)?;
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn delete_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.lock().delete_ticker(ns, name)
    }

    async fn list_tickers(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Ticker>> {
        Ok(self.lock().list_tickers(ns, page))
    }

    async fn claim_ticker(&self, ns: &Namespace) -> StoreResult<Option<Ticker>> {
        let now = self.instant();
        self.lock().claim_ticker(ns, now)
    }

    async fn fire_queue_tickers(&self, limit: u32) -> StoreResult<Vec<FiredTicker>> {
        let now = self.instant();
        let fired = self.lock().fire_queue_tickers(limit, now)?;
        self.wake_queues(fired.iter().filter_map(|f| f.task.as_ref()));
        Ok(fired)
    }

    async fn next_maturity(&self, scope: &TickerScope) -> StoreResult<Option<std::time::Duration>> {
        let now = self.instant();
        Ok(self.lock().next_maturity(scope, now))
    }
}
