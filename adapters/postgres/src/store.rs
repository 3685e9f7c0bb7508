//! [`PgStore`]: the [`Store`] port on a bb8 pool, plus transactional enqueue.

mod open;
mod pool;

pub(crate) use pool::in_schema;

use crate::debounce::Debouncer;
use crate::error::PgError;
use crate::{events, listen, maintenance, migrate, queues, tasks, tickers};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::Pool;
use pgqueue_domain::{
    Created, EventId, Namespace, NewTask, Outcome, Page, Queue, QueueName, QueuePatch, Status,
    StatusCount, Task, TaskFilter, TaskId, Ticker, TickerName, TickerPatch, WorkerName,
};
use pgqueue_ports::{
    Clock, EventPage, FiredTicker, Listing, Maintenance, Retained, Signal, Store, StoreError,
    StoreResult, TickerScope,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// pgqueue's storage on PostgreSQL. Cheap to clone (all clones share the pool and the
/// listener); the listener stops when the last clone is dropped or on [`PgStore::close`].
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<AsyncPgConnection>,
    clock: Arc<dyn Clock>,
    signal: Signal,
    /// Dropping it (with the last clone) or sending `true` stops the listener.
    stop: watch::Sender<bool>,
    /// Which queues were notified just now (see `debounce.rs`).
    debounce: Debouncer,
    /// The cleanup horizon of the last vacuum (see `maintenance.rs`).
    horizon: maintenance::Horizon,
    /// The schema option, for statements that name the table (VACUUM).
    schema: Option<String>,
    /// `Some` with `prepared: false`: how each pooled statement is wrapped.
    unprepared: Option<Unprepared>,
    /// Where one-queue claims start each priority (see `tasks/floors.rs`).
    floors: Arc<tasks::Floors>,
}

/// How statements run on a pool that keeps nothing between transactions (see
/// [`PgOptions::prepared`](crate::PgOptions::prepared)).
struct Unprepared {
    /// `SET LOCAL search_path …` for the schema option, run first in each transaction.
    set_path: Option<String>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.inner.pool.state())
            .field("clock", &self.inner.clock)
            .finish()
    }
}

impl PgStore {
    /// Stops the listener now (the pool closes when the last clone is dropped).
    pub fn close(&self) {
        let _ = self.inner.stop.send(true);
    }

    fn now_param(&self) -> Option<DateTime<Utc>> {
        self.inner.clock.now()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn now(&self) -> StoreResult<DateTime<Utc>> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::now(c, now).await).await
    }

    fn signal(&self) -> Signal {
        self.inner.signal.clone()
    }

    async fn list_namespaces(&self) -> StoreResult<Vec<Namespace>> {
        self.with_conn(async |c| queues::namespaces(c).await).await
    }

    async fn create_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        self.with_conn(async |c| queues::create(c, ns, name, patch).await)
            .await
    }

    async fn register_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        self.with_conn(async |c| queues::register(c, ns, name, patch).await)
            .await
    }

    async fn get_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        self.with_conn(async |c| queues::get(c, ns, name).await)
            .await
    }

    async fn update_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue> {
        let queue = self
            .with_conn(async |c| queues::update(c, ns, name, patch).await)
            .await?;
        // A rename moves the tasks under another name, below what is known of its floors
        // (here and in every other process: the notification tells them).
        self.inner.floors.forget(ns, name);
        self.inner.floors.forget(ns, &queue.name);
        if queue.name != *name {
            self.with_conn(async |c| listen::notify_below_floors(c, ns, &queue.name).await)
                .await?;
        }
        Ok(queue)
    }

    async fn delete_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue> {
        let queue = self
            .with_conn(async |c| queues::delete(c, ns, name).await)
            .await?;
        self.inner.floors.forget(ns, name);
        Ok(queue)
    }

    async fn list_queues(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Queue>> {
        self.with_conn(async |c| queues::list(c, ns, page).await)
            .await
    }

    async fn queue_statuses(&self, ns: &Namespace) -> StoreResult<Vec<StatusCount>> {
        let now = self.now_param();
        self.with_conn(async |c| queues::statuses(c, now, ns).await)
            .await
    }

    async fn clean_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Vec<Task>> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::clean_queue(c, now, ns, name).await)
            .await
    }

    async fn create_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        new: &[NewTask],
    ) -> StoreResult<Vec<Created>> {
        let now = self.now_param();
        let channel = format!("task:{ns}:{queue}");
        let loud = self.inner.debounce.lead(&channel, Instant::now());
        let created = self
            .with_conn(async |c| tasks::create(c, now, ns, queue, new, loud).await)
            .await?;
        if !loud && let Some(at) = self.inner.debounce.trail(&channel, Instant::now()) {
            let store = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                store.inner.debounce.fired(&channel, Instant::now());
                let send = store.with_conn(async |c| listen::notify(c, &channel).await);
                if let Err(e) = send.await {
                    // Workers still find the tasks at their next poll.
                    tracing::warn!(error = %e, channel, "cannot send a debounced wake-up");
                }
            });
        }
        Ok(created)
    }

    async fn get_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::get(c, now, ns, id).await)
            .await
    }

    async fn list_tasks(&self, ns: &Namespace, filter: &TaskFilter) -> StoreResult<Listing<Task>> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::list(c, now, ns, filter).await)
            .await
    }

    async fn retain_tasks(
        &self,
        ns: &Namespace,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> StoreResult<Retained> {
        let now = self.now_param();
        let workers = vec![worker; limit as usize];
        let filter = tasks::QueueFilter::of(queues);
        let floors = &self.inner.floors;
        self.with_conn(async |c| tasks::claim(c, now, ns, &workers, filter, floors).await)
            .await
    }

    async fn retain_tasks_for(
        &self,
        ns: &Namespace,
        workers: &[WorkerName],
        queues: &[QueueName],
    ) -> StoreResult<Retained> {
        let now = self.now_param();
        let workers: Vec<&WorkerName> = workers.iter().collect();
        let filter = tasks::QueueFilter::of(queues);
        let floors = &self.inner.floors;
        self.with_conn(async |c| tasks::claim(c, now, ns, &workers, filter, floors).await)
            .await
    }

    async fn release_task(
        &self,
        ns: &Namespace,
        id: TaskId,
        outcome: &Outcome,
    ) -> StoreResult<Task> {
        let now = self.now_param();
        let one = [(id, outcome.clone())];
        let mut results = self
            .with_conn(async |c| tasks::release_many(c, now, ns, &one).await)
            .await?;
        match results.pop() {
            Some(result) => result.map_err(StoreError::from),
            None => Err(StoreError::task_not_found(id)),
        }
    }

    async fn release_tasks(
        &self,
        ns: &Namespace,
        releases: &[(TaskId, Outcome)],
    ) -> StoreResult<Vec<StoreResult<Task>>> {
        let now = self.now_param();
        let results = self
            .with_conn(async |c| tasks::release_many(c, now, ns, releases).await)
            .await?;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(StoreError::from))
            .collect())
    }

    async fn heartbeat(
        &self,
        ns: &Namespace,
        id: TaskId,
        worker: &WorkerName,
    ) -> StoreResult<Task> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::heartbeat(c, now, ns, id, worker).await)
            .await
    }

    async fn cancel_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::cancel(c, now, ns, id).await)
            .await
    }

    async fn retry_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.now_param();
        let task = self
            .with_conn(async |c| tasks::retry(c, now, ns, id).await)
            .await?;
        // Retried, it waits under its old key, below what is known of the queue's floors
        // (here and in every other process: the notification tells them).
        self.inner.floors.forget(ns, &task.queue);
        self.with_conn(async |c| listen::notify_below_floors(c, ns, &task.queue).await)
            .await?;
        Ok(task)
    }

    async fn retry_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        statuses: &[Status],
        limit: u32,
    ) -> StoreResult<u64> {
        let now = self.now_param();
        let retried = self
            .with_conn(async |c| tasks::retry_many(c, now, ns, queue, statuses, limit).await)
            .await?;
        self.inner.floors.forget(ns, queue);
        Ok(retried)
    }

    async fn delete_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::delete(c, now, ns, id).await)
            .await
    }

    async fn purge_tasks(
        &self,
        ns: &Namespace,
        queue: Option<QueueName>,
        statuses: &[Status],
    ) -> StoreResult<u64> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::purge(c, now, ns, queue.as_ref(), statuses).await)
            .await
    }

    async fn pause_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        paused: bool,
    ) -> StoreResult<Queue> {
        let now = self.now_param();
        self.with_conn(async |c| queues::pause(c, now, ns, name, paused).await)
            .await
    }

    async fn pause_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        paused: bool,
    ) -> StoreResult<Ticker> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::pause(c, now, ns, name, paused).await)
            .await
    }

    async fn rescue_leases(&self, limit: u32) -> StoreResult<Vec<Task>> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::rescue(c, now, limit).await)
            .await
    }

    async fn clean_up(&self, limit: u32) -> StoreResult<u64> {
        let now = self.now_param();
        self.with_conn(async |c| tasks::clean_up(c, now, limit).await)
            .await
    }

    async fn maintain(&self, force: bool) -> StoreResult<Maintenance> {
        let set_path = self
            .inner
            .unprepared
            .as_ref()
            .and_then(|u| u.set_path.as_deref());
        let schema = self.inner.schema.as_deref();
        self.on_pool(false, async |c| {
            maintenance::maintain(c, force, &self.inner.horizon, schema, set_path).await
        })
        .await
    }

    async fn ready(&self) -> StoreResult<()> {
        self.with_conn(async |c| {
            let pending = migrate::status(c, None)
                .await?
                .into_iter()
                .filter(|m| !m.applied)
                .count();
            if pending == 0 {
                Ok(())
            } else {
                Err(PgError::Store(StoreError::Unavailable(
                    format!("{pending} migration(s) pending").into(),
                )))
            }
        })
        .await
    }

    async fn read_events(
        &self,
        ns: &Namespace,
        last: Option<EventId>,
        limit: u32,
    ) -> StoreResult<EventPage> {
        self.with_conn(async |c| events::read(c, ns, last, limit).await)
            .await
    }

    async fn prune_events(&self, retention: pgqueue_domain::Duration) -> StoreResult<u64> {
        let now = self.now_param();
        self.with_conn(async |c| events::prune(c, now, retention).await)
            .await
    }

    async fn create_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::create(c, now, ns, name, patch).await)
            .await
    }

    async fn register_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::register(c, now, ns, name, patch).await)
            .await
    }

    async fn get_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.with_conn(async |c| tickers::get(c, ns, name).await)
            .await
    }

    async fn update_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::update(c, now, ns, name, patch).await)
            .await
    }

    async fn delete_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.with_conn(async |c| tickers::delete(c, ns, name).await)
            .await
    }

    async fn list_tickers(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Ticker>> {
        self.with_conn(async |c| tickers::list(c, ns, page).await)
            .await
    }

    async fn claim_ticker(&self, ns: &Namespace) -> StoreResult<Option<Ticker>> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::claim(c, now, ns).await)
            .await
    }

    async fn fire_queue_tickers(&self, limit: u32) -> StoreResult<Vec<FiredTicker>> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::fire(c, now, limit).await)
            .await
    }

    async fn next_maturity(&self, scope: &TickerScope) -> StoreResult<Option<Duration>> {
        let now = self.now_param();
        self.with_conn(async |c| tickers::next_maturity(c, now, scope).await)
            .await
    }
}
