//! The `Store` port implemented over a mutex-guarded [`State`].

use crate::state::State;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    Namespace, NewTask, Outcome, Page, Queue, QueueName, QueuePatch, Status, StatusCount, Task,
    TaskFilter, TaskId, Ticker, TickerName, TickerPatch, WorkerName, time,
};
use pgqueue_ports::{
    Clock, FiredTicker, Listing, Signal, StorageClock, Store, StoreError, StoreResult, TickerScope,
    Wakeup,
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

/// One page of an ordered iterator, with the total count.
fn paginate<T>(items: impl Iterator<Item = T>, page: Page) -> Listing<T> {
    let all: Vec<T> = items.collect();
    let count = all.len() as u64;
    let items = all
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit()).unwrap_or(usize::MAX))
        .collect();
    Listing { count, items }
}

fn queue_exists() -> StoreError {
    StoreError::Conflict("queue already exists".into())
}

fn ticker_exists() -> StoreError {
    StoreError::Conflict("ticker already exists".into())
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied rule behind (rules are
        // applied to copies and written back whole), so a poisoned lock is safe to reuse.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn instant(&self) -> DateTime<Utc> {
        time::truncate(self.clock.now().unwrap_or_else(Utc::now))
    }

    /// Finds a task of `ns`, applies `rule` to a copy with its queue and `now`, and stores the
    /// copy only if the rule accepted it: a refused transition changes nothing.
    fn transition(
        &self,
        ns: &Namespace,
        id: TaskId,
        rule: impl FnOnce(&mut Task, &Queue, DateTime<Utc>) -> pgqueue_domain::Result<()>,
    ) -> StoreResult<Task> {
        let now = self.instant();
        let mut state = self.lock();
        let current = state
            .tasks
            .get(&id)
            .filter(|t| &t.namespace == ns)
            .ok_or_else(|| StoreError::task_not_found(id))?;
        let queue = state
            .queue_of(current)
            .ok_or_else(|| StoreError::task_not_found(id))?;
        let mut task = current.clone();
        rule(&mut task, queue, now)?;
        state.tasks.insert(id, task.clone());
        Ok(task.observe(now))
    }

    fn wake_ticker(&self, ns: &Namespace) {
        self.signal.send(Wakeup::Ticker {
            namespace: ns.clone(),
        });
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
        let state = self.lock();
        let mut all: Vec<Namespace> = state
            .queues
            .keys()
            .map(|(ns, _)| ns.clone())
            .chain(state.tickers.keys().map(|(ns, _)| ns.clone()))
            .collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    async fn create_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let mut state = self.lock();
        let key = (ns.clone(), name.clone());
        if state.queues.contains_key(&key) {
            return Err(queue_exists());
        }
        let queue = Queue::from_patch(ns.clone(), name.clone(), patch);
        state.queues.insert(key, queue.clone());
        Ok(queue)
    }

    async fn register_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let mut state = self.lock();
        let queue = state
            .queues
            .entry((ns.clone(), name.clone()))
            .or_insert_with(|| Queue::new(ns.clone(), name.clone()));
        queue.apply_settings(patch);
        Ok(queue.clone())
    }

    async fn get_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        self.lock()
            .queues
            .get(&(ns.clone(), name.clone()))
            .cloned()
            .ok_or_else(|| StoreError::not_found("queue", name))
    }

    async fn update_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let mut state = self.lock();
        let key = (ns.clone(), name.clone());
        let mut queue = state
            .queues
            .get(&key)
            .cloned()
            .ok_or_else(|| StoreError::not_found("queue", name))?;
        queue.apply(patch);
        if &queue.name != name {
            let new_key = (ns.clone(), queue.name.clone());
            if state.queues.contains_key(&new_key) {
                return Err(queue_exists());
            }
            state.queues.remove(&key);
            for task in state
                .tasks
                .values_mut()
                .filter(|t| &t.namespace == ns && &t.queue == name)
            {
                task.queue = queue.name.clone();
            }
            state.queues.insert(new_key, queue.clone());
        } else {
            state.queues.insert(key, queue.clone());
        }
        Ok(queue)
    }

    async fn delete_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        let mut state = self.lock();
        let queue = state
            .queues
            .remove(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("queue", name))?;
        state
            .tasks
            .retain(|_, t| !(&t.namespace == ns && &t.queue == name));
        Ok(queue)
    }

    async fn list_queues(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Queue>> {
        let state = self.lock();
        Ok(paginate(
            state
                .queues
                .values()
                .filter(|q| &q.namespace == ns)
                .cloned(),
            page,
        ))
    }

    async fn queue_statuses(&self, ns: &Namespace) -> StoreResult<Vec<StatusCount>> {
        let now = self.instant();
        let state = self.lock();
        let mut out = Vec::new();
        for queue in state.queues.values().filter(|q| &q.namespace == ns) {
            for status in Status::ALL {
                let count = state
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
        Ok(out)
    }

    async fn clean_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        let mut state = self.lock();
        let ended: Vec<TaskId> = state
            .tasks
            .values()
            .filter(|t| &t.namespace == ns && &t.queue == name)
            .filter(|t| Status::derive(t.state(), t.dies_at(), now).is_end())
            .map(|t| t.id)
            .collect();
        Ok(ended
            .into_iter()
            .filter_map(|id| state.tasks.remove(&id))
            .map(|t| t.observe(now))
            .collect())
    }

    async fn create_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        tasks: &[NewTask],
    ) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        let created = {
            let mut state = self.lock();
            let q = state
                .queues
                .get(&(ns.clone(), queue.clone()))
                .cloned()
                .ok_or_else(|| StoreError::not_found("queue", queue))?;
            let first = state.last_id + 1;
            let created: Vec<Task> = tasks
                .iter()
                .enumerate()
                .map(|(i, new)| Task::create(first + i as TaskId, &q, new.clone(), now))
                .collect();
            state.last_id += created.len() as TaskId;
            for task in &created {
                state.tasks.insert(task.id, task.clone());
            }
            created
        };
        self.signal.send(Wakeup::Task {
            namespace: ns.clone(),
            queue: queue.clone(),
        });
        Ok(created)
    }

    async fn get_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.instant();
        self.lock()
            .tasks
            .get(&id)
            .filter(|t| &t.namespace == ns)
            .map(|t| t.clone().observe(now))
            .ok_or_else(|| StoreError::task_not_found(id))
    }

    async fn list_tasks(&self, ns: &Namespace, filter: &TaskFilter) -> StoreResult<Listing<Task>> {
        let now = self.instant();
        let state = self.lock();
        let matching = state
            .tasks
            .values()
            .filter(|t| &t.namespace == ns)
            .filter(|t| filter.queue.as_ref().is_none_or(|q| &t.queue == q))
            .map(|t| t.clone().observe(now))
            .filter(|t| filter.status.is_none_or(|s| t.status() == s));
        Ok(paginate(matching, filter.page))
    }

    async fn retain_tasks(
        &self,
        ns: &Namespace,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        let mut state = self.lock();
        let mut candidates: Vec<&Task> = state
            .tasks
            .values()
            .filter(|t| &t.namespace == ns)
            .filter(|t| queues.is_empty() || queues.contains(&t.queue))
            .filter(|t| t.is_retainable(now))
            .collect();
        candidates.sort_by_key(|t| (t.created_at, t.id));
        let chosen: Vec<TaskId> = candidates
            .into_iter()
            .take(limit as usize)
            .map(|t| t.id)
            .collect();
        let mut retained = Vec::with_capacity(chosen.len());
        for id in chosen {
            let Some(mut task) = state.tasks.get(&id).cloned() else {
                continue;
            };
            let Some(lease) = state.queue_of(&task).map(|q| q.lease) else {
                continue;
            };
            task.retain(worker, lease, now)?;
            state.tasks.insert(id, task.clone());
            retained.push(task);
        }
        Ok(retained)
    }

    async fn release_task(
        &self,
        ns: &Namespace,
        id: TaskId,
        outcome: &Outcome,
    ) -> StoreResult<Task> {
        self.transition(ns, id, |task, queue, now| {
            task.release(outcome, queue.retry_delay, now)
        })
    }

    async fn heartbeat(
        &self,
        ns: &Namespace,
        id: TaskId,
        worker: &WorkerName,
    ) -> StoreResult<Task> {
        self.transition(ns, id, |task, queue, now| {
            task.heartbeat(worker, queue.lease, now)
        })
    }

    async fn rescue_leases(&self, limit: u32) -> StoreResult<Vec<Task>> {
        let now = self.instant();
        let mut state = self.lock();
        let mut due: Vec<(DateTime<Utc>, TaskId)> = state
            .tasks
            .values()
            .filter(|t| t.is_rescuable(now))
            .filter_map(|t| t.lease_expires_at().map(|l| (l, t.id)))
            .collect();
        due.sort();
        let mut rescued = Vec::new();
        for (_, id) in due.into_iter().take(limit as usize) {
            let Some(mut task) = state.tasks.get(&id).cloned() else {
                continue;
            };
            let Some(delay) = state.queue_of(&task).map(|q| q.retry_delay) else {
                continue;
            };
            task.rescue(delay, now)?;
            state.tasks.insert(id, task.clone());
            rescued.push(task);
        }
        rescued.sort_by_key(|t| t.id);
        let woken: Vec<(Namespace, QueueName)> = rescued
            .iter()
            .map(|t| (t.namespace.clone(), t.queue.clone()))
            .collect();
        drop(state);
        for (namespace, queue) in woken {
            self.signal.send(Wakeup::Task { namespace, queue });
        }
        Ok(rescued)
    }

    async fn clean_up(&self, limit: u32) -> StoreResult<u64> {
        let now = self.instant();
        let mut state = self.lock();
        let doomed: Vec<TaskId> = state
            .tasks
            .values()
            .filter(|t| {
                state
                    .queue_of(t)
                    .is_some_and(|q| t.is_cleanable(q.ttl, now))
            })
            .map(|t| t.id)
            .take(limit as usize)
            .collect();
        for id in &doomed {
            state.tasks.remove(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn create_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let ticker = {
            let mut state = self.lock();
            let key = (ns.clone(), name.clone());
            if state.tickers.contains_key(&key) {
                return Err(ticker_exists());
            }
            let ticker = Ticker::from_patch(ns.clone(), name.clone(), patch);
            state.tickers.insert(key, ticker.clone());
            ticker
        };
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn register_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let ticker = {
            let mut state = self.lock();
            let ticker = state
                .tickers
                .entry((ns.clone(), name.clone()))
                .or_insert_with(|| Ticker::new(ns.clone(), name.clone()));
            ticker.apply_settings(patch);
            ticker.clone()
        };
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn get_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.lock()
            .tickers
            .get(&(ns.clone(), name.clone()))
            .cloned()
            .ok_or_else(|| StoreError::not_found("ticker", name))
    }

    async fn update_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let ticker = {
            let mut state = self.lock();
            let key = (ns.clone(), name.clone());
            let mut ticker = state
                .tickers
                .get(&key)
                .cloned()
                .ok_or_else(|| StoreError::not_found("ticker", name))?;
            ticker.apply(patch);
            let new_key = (ns.clone(), ticker.name.clone());
            if new_key != key {
                if state.tickers.contains_key(&new_key) {
                    return Err(ticker_exists());
                }
                state.tickers.remove(&key);
            }
            state.tickers.insert(new_key, ticker.clone());
            ticker
        };
        self.wake_ticker(ns);
        Ok(ticker)
    }

    async fn delete_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.lock()
            .tickers
            .remove(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("ticker", name))
    }

    async fn list_tickers(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Ticker>> {
        let state = self.lock();
        Ok(paginate(
            state
                .tickers
                .values()
                .filter(|t| &t.namespace == ns)
                .cloned(),
            page,
        ))
    }

    async fn claim_ticker(&self, ns: &Namespace) -> StoreResult<Option<Ticker>> {
        let now = self.instant();
        let mut state = self.lock();
        let next = state
            .tickers
            .values()
            .filter(|t| &t.namespace == ns && t.queue.is_none() && t.is_matured(now))
            .min_by_key(|t| (t.matures_at(), t.name.clone()))
            .map(|t| (t.namespace.clone(), t.name.clone()));
        let Some(key) = next else { return Ok(None) };
        let Some(ticker) = state.tickers.get_mut(&key) else {
            return Ok(None);
        };
        ticker.claim(now)?;
        Ok(Some(ticker.clone()))
    }

    async fn fire_queue_tickers(&self, limit: u32) -> StoreResult<Vec<FiredTicker>> {
        let now = self.instant();
        let mut fired = Vec::new();
        {
            let mut state = self.lock();
            let mut matured: Vec<&Ticker> = state
                .tickers
                .values()
                .filter(|t| t.queue.is_some() && t.is_matured(now))
                .collect();
            matured.sort_by_key(|t| (t.matures_at(), t.namespace.clone(), t.name.clone()));
            let keys: Vec<(Namespace, TickerName)> = matured
                .into_iter()
                .take(limit as usize)
                .map(|t| (t.namespace.clone(), t.name.clone()))
                .collect();
            for key in keys {
                let Some(mut ticker) = state.tickers.get(&key).cloned() else {
                    continue;
                };
                ticker.claim(now)?;
                state.tickers.insert(key.clone(), ticker.clone());
                let queue = ticker
                    .queue
                    .clone()
                    .and_then(|q| state.queues.get(&(key.0.clone(), q)).cloned());
                let task = match queue {
                    Some(q) => {
                        state.last_id += 1;
                        let new = NewTask::from_stored(ticker.payload.clone());
                        let task = Task::create(state.last_id, &q, new, now);
                        state.tasks.insert(task.id, task.clone());
                        Some(task)
                    }
                    None => None,
                };
                fired.push(FiredTicker { ticker, task });
            }
        }
        for f in &fired {
            if let Some(t) = &f.task {
                self.signal.send(Wakeup::Task {
                    namespace: t.namespace.clone(),
                    queue: t.queue.clone(),
                });
            }
        }
        Ok(fired)
    }

    async fn next_maturity(&self, scope: &TickerScope) -> StoreResult<Option<std::time::Duration>> {
        let now = self.instant();
        let state = self.lock();
        let in_scope = |t: &&Ticker| match scope {
            TickerScope::Deliveries(ns) => &t.namespace == ns && t.queue.is_none(),
            TickerScope::Queued => t.queue.is_some(),
        };
        Ok(state
            .tickers
            .values()
            .filter(in_scope)
            .map(|t| {
                t.matures_at().map_or(std::time::Duration::ZERO, |m| {
                    (m - now).to_std().unwrap_or_default()
                })
            })
            .min())
    }
}
