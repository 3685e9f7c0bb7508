//! The storage port: everything pgqueue keeps, behind one trait.
//!
//! Queues, tasks and tickers are grouped in one `Store` rather than split per aggregate
//! because they are not independent: deleting or renaming a queue cascades to its tasks,
//! creating a task reads its queue's policy, a queue ticker's maturity inserts a task in the
//! same transaction as its claim. An adapter implements all of it against one database, and
//! one trait object is what the core holds.
//!
//! Contract (checked by the storage contract suite in `tests/`, run against every adapter):
//! - every method is scoped to the namespace it is given and never sees another's data,
//!   except the maintenance methods (`rescue_leases`, `clean_up`, `fire_queue_tickers`,
//!   `list_namespaces`), which cover all namespaces on purpose;
//! - names and inputs arrive validated (domain newtypes); the store applies the domain's
//!   transition rules atomically, with time from its [`Clock`](crate::Clock);
//! - every returned [`Task`] has its `status` derived at the store's now;
//! - claims (`retain_tasks`, `claim_ticker`, `fire_queue_tickers`, `rescue_leases`) hand each
//!   item to exactly one caller, even across processes sharing one database.

use crate::error::StoreResult;
use crate::signal::Signal;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    Created, Duration, EventId, Limit, Namespace, NewTask, Outcome, Page, Queue, QueueName,
    QueuePatch, Status, StatusCount, Task, TaskEvent, TaskFilter, TaskId, Ticker, TickerName,
    TickerPatch, WorkerName,
};

/// One page of a list, with the total before pagination.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// How many items match in all.
    pub count: u64,
    /// The page's items, in the list's order.
    pub items: Vec<T>,
}

/// What a claim retained, and which queue limits held it back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retained {
    /// The tasks, in the order of the workers they went to.
    pub tasks: Vec<Task>,
    /// Each queue whose `max_running` or `rate` refused part of the claim while it had
    /// tasks waiting.
    pub limited: Vec<Limited>,
}

/// A queue limit that refused (part of) a claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    /// The queue.
    pub queue: QueueName,
    /// Which of its limits.
    pub limit: Limit,
    /// For a rate: how long until it allows one more retain (a refused worker sleeps that
    /// long instead of asking again at once).
    pub retry_in: Option<Duration>,
}

/// A queue ticker's maturity, claimed and turned into a task.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredTicker {
    /// The ticker, with its new timestamp.
    pub ticker: Ticker,
    /// The task created, or `None` when its queue no longer exists (the maturity is skipped).
    pub task: Option<Task>,
}

/// What one housekeeping pass ([`Store::maintain`]) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Planner statistics were refreshed.
    pub analyzed: bool,
    /// Dead rows were reclaimed.
    pub vacuumed: bool,
    /// Indexes rebuilt because they were mostly empty pages (their size misleads the
    /// planner; see the PostgreSQL adapter's `reindex` module).
    pub reindexed: u32,
}

/// Which tickers a maturity question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickerScope {
    /// Tickers without a queue in one namespace: delivered to subscribers.
    Deliveries(Namespace),
    /// Tickers with a queue, in every namespace: turned into tasks by the server.
    Queued,
}

/// A reader's next events ([`Store::read_events`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventPage {
    /// The namespace's events after the reader's id, in id order.
    pub events: Vec<TaskEvent>,
    /// Where the reader stands now: read on after this id (it may be past the last event
    /// returned, when events of other namespaces followed).
    pub last: EventId,
    /// The reader's id was outside the kept window (or never given out): `events` is empty
    /// and `last` is the newest id (domain: `event::resume`).
    pub reset: bool,
}

/// Storage for queues, tasks and tickers.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// The storage's current time (its clock, or the pinned one).
    async fn now(&self) -> StoreResult<DateTime<Utc>>;

    /// The wake-up signal this store feeds.
    fn signal(&self) -> Signal;

    /// Every namespace that has a queue or a ticker, sorted, the system one included.
    async fn list_namespaces(&self) -> StoreResult<Vec<Namespace>>;

    // ---- queues ----

    /// Creates a queue with the defaults and then the patch's fields (its `name` is ignored).
    /// Conflict if it exists.
    async fn create_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue>;

    /// Upsert: creates the queue with defaults if missing, then applies the patch's fields.
    async fn register_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue>;

    /// The queue, or NotFound.
    async fn get_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue>;

    /// Applies the patch (a `name` renames and carries the tasks along). NotFound; Conflict
    /// when renaming onto an existing queue.
    async fn update_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        patch: &QueuePatch,
    ) -> StoreResult<Queue>;

    /// Deletes the queue and all its tasks; returns the queue. NotFound.
    async fn delete_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Queue>;

    /// Queues ordered by name.
    async fn list_queues(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Queue>>;

    /// For every queue of the namespace (by name) and every status (in `Status::ALL` order),
    /// how many tasks are in it now; zeros included.
    async fn queue_statuses(&self, ns: &Namespace) -> StoreResult<Vec<StatusCount>>;

    /// Deletes the queue's released, failed and expired tasks now and returns them
    /// (ordered by id). An unknown queue gives an empty list.
    async fn clean_queue(&self, ns: &Namespace, name: &QueueName) -> StoreResult<Vec<Task>>;

    // ---- tasks ----

    /// Creates the tasks in the queue, all or nothing, in order; NotFound for an unknown queue.
    /// A task with a unique key held by a waiting or retained task of the queue creates
    /// nothing and answers that task (`Created::Existing`), race-free across processes; a
    /// key repeated in the batch answers the batch's first task with it; an expired holder
    /// gives its key up (domain: `Task::holds_key`, `Task::gives_up_key`). New tasks get
    /// increasing ids in input order. Signals a wake-up for the queue once committed.
    async fn create_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        tasks: &[NewTask],
    ) -> StoreResult<Vec<Created>>;

    /// The task, or NotFound.
    async fn get_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task>;

    /// Tasks ordered by id, filtered by queue and derived status.
    async fn list_tasks(&self, ns: &Namespace, filter: &TaskFilter) -> StoreResult<Listing<Task>>;

    /// Retains up to `limit` retainable tasks in claim order (higher priority first, then
    /// the oldest by creation, then id: domain `Task::claim_order`) of the
    /// given queues (empty: every queue of the namespace) for `worker`, atomically, never
    /// handing a task to two callers and never blocking on another caller's claim (a
    /// limited queue's claims take turns: see `pgqueue_domain::limits`). Queues with a limit
    /// never have more tasks retained than it allows; a claim over several queues takes from
    /// the unlimited ones first.
    async fn retain_tasks(
        &self,
        ns: &Namespace,
        worker: &WorkerName,
        queues: &[QueueName],
        limit: u32,
    ) -> StoreResult<Retained>;

    /// Retains one task for each of several callers at once, oldest first: task `i` of the
    /// answer is retained by `workers[i]`, and the answer is shorter than `workers` when
    /// fewer tasks are available. Same rules as [`Store::retain_tasks`]; a server coalesces
    /// concurrent single-task retains into this. Adapters may override it to claim in one
    /// statement.
    async fn retain_tasks_for(
        &self,
        ns: &Namespace,
        workers: &[WorkerName],
        queues: &[QueueName],
    ) -> StoreResult<Retained> {
        let mut out = Retained::default();
        for worker in workers {
            let mut one = self.retain_tasks(ns, worker, queues, 1).await?;
            out.limited.append(&mut one.limited);
            match one.tasks.pop() {
                Some(task) => out.tasks.push(task),
                None => break,
            }
        }
        Ok(out)
    }

    /// Releases a task with the outcome (domain rule `Task::release`). NotFound; Rule errors
    /// `NotRetained` / `NotRetainedBy` when refused, changing nothing.
    async fn release_task(
        &self,
        ns: &Namespace,
        id: TaskId,
        outcome: &Outcome,
    ) -> StoreResult<Task>;

    /// Releases several tasks; each gets its own result, in the given order. Adapters may
    /// override this to do it in one round trip.
    async fn release_tasks(
        &self,
        ns: &Namespace,
        releases: &[(TaskId, Outcome)],
    ) -> StoreResult<Vec<StoreResult<Task>>> {
        let mut out = Vec::with_capacity(releases.len());
        for (id, outcome) in releases {
            out.push(self.release_task(ns, *id, outcome).await);
        }
        Ok(out)
    }

    /// Extends the lease of `worker`'s attempt (domain rule `Task::heartbeat`).
    async fn heartbeat(&self, ns: &Namespace, id: TaskId, worker: &WorkerName)
    -> StoreResult<Task>;

    // ---- operating ----

    /// Cancels a task (domain rule `Task::cancel`): a waiting one ends `cancelled` now, a
    /// retained one is asked to stop. NotFound; Rule `TaskEnded`.
    async fn cancel_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task>;

    /// Retries an ended task (domain rule `Task::retry`, with its queue's policy now).
    /// NotFound; Rule `NotEnded`/`NotRetryable`; Conflict when another waiting or retained
    /// task holds its unique key.
    async fn retry_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task>;

    /// Retries up to `limit` tasks of the queue in the given (retryable) statuses, oldest id
    /// first, skipping those whose unique key another waiting task holds; returns how many.
    /// NotFound for an unknown queue.
    async fn retry_tasks(
        &self,
        ns: &Namespace,
        queue: &QueueName,
        statuses: &[Status],
        limit: u32,
    ) -> StoreResult<u64>;

    /// Deletes a task that no worker holds (domain rule `Task::check_deletable`) and
    /// returns it. NotFound; Rule `StillRetained`.
    async fn delete_task(&self, ns: &Namespace, id: TaskId) -> StoreResult<Task>;

    /// Deletes the namespace's tasks in the given derived statuses (never `retained`), of
    /// one queue or all; returns how many.
    async fn purge_tasks(
        &self,
        ns: &Namespace,
        queue: Option<QueueName>,
        statuses: &[Status],
    ) -> StoreResult<u64>;

    /// Pauses (`true`) or resumes a queue (domain `Queue::pause`/`resume`): retains skip a
    /// paused queue; resuming wakes idle workers. NotFound.
    async fn pause_queue(
        &self,
        ns: &Namespace,
        name: &QueueName,
        paused: bool,
    ) -> StoreResult<Queue>;

    /// Pauses or resumes a ticker (domain `Ticker::pause`/`resume`). NotFound.
    async fn pause_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        paused: bool,
    ) -> StoreResult<Ticker>;

    /// Rescues up to `limit` tasks whose lease passed, in every namespace (domain rule
    /// `Task::rescue`); returns them after the change.
    async fn rescue_leases(&self, limit: u32) -> StoreResult<Vec<Task>>;

    /// Deletes up to `limit` tasks, in every namespace, that ended at least their queue's
    /// `ttl` ago (domain rule `Task::is_cleanable`); returns how many. Callers repeat until
    /// it returns fewer than `limit`.
    async fn clean_up(&self, limit: u32) -> StoreResult<u64>;

    /// Housekeeping the database may not do by itself: a task table churns (insert, a few
    /// updates, delete), and without fresh planner statistics and reclaimed dead rows the
    /// claim and release plans degrade by orders of magnitude. Cheap when nothing is due.
    /// `force` does all of it now, whatever the store's counters say (benchmarks, after a
    /// bulk load or delete). Stores with nothing to maintain do nothing.
    async fn maintain(&self, force: bool) -> StoreResult<Maintenance> {
        let _ = force;
        Ok(Maintenance::default())
    }

    /// Whether the store can serve requests now (`GET /readyz`): it answers, and its schema
    /// is the one this build expects. Stores with nothing to check answer at once.
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }

    // ---- events ----

    /// The events of `ns` after `last` (none: from the newest on, so a new reader gets only
    /// what happens next), at most about `limit`. Every change of the methods above records
    /// its events in the same transaction (domain: `event`), so a reader that comes back
    /// with its last id gets each later event once, in order, as long as the events after it
    /// are still kept.
    async fn read_events(
        &self,
        ns: &Namespace,
        last: Option<EventId>,
        limit: u32,
    ) -> StoreResult<EventPage>;

    /// Forgets the events of every namespace older than `retention` (on the store's clock),
    /// oldest first, so that what is kept is always everything after some id; returns how
    /// many were forgotten.
    async fn prune_events(&self, retention: Duration) -> StoreResult<u64>;

    // ---- tickers ----

    /// Creates a ticker with the defaults and then the patch's fields. Conflict if it exists.
    async fn create_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker>;

    /// Upsert that keeps the timestamp of an existing ticker.
    async fn register_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker>;

    /// The ticker, or NotFound.
    async fn get_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker>;

    /// Applies the patch (a `name` renames). NotFound; Conflict on a rename onto another.
    async fn update_ticker(
        &self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
    ) -> StoreResult<Ticker>;

    /// Deletes and returns the ticker. NotFound.
    async fn delete_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker>;

    /// Tickers ordered by name.
    async fn list_tickers(&self, ns: &Namespace, page: Page) -> StoreResult<Listing<Ticker>>;

    /// Claims one matured ticker without a queue in the namespace (the longest matured
    /// first), or none.
    async fn claim_ticker(&self, ns: &Namespace) -> StoreResult<Option<Ticker>>;

    /// Claims up to `limit` matured tickers that have a queue, in every namespace, and
    /// creates one task per maturity in the same transaction.
    async fn fire_queue_tickers(&self, limit: u32) -> StoreResult<Vec<FiredTicker>>;

    /// How long until the earliest maturity in the scope: zero if one has matured, `None` if
    /// the scope has no ticker. Measured on the store's clock so processes need not agree
    /// on theirs.
    async fn next_maturity(&self, scope: &TickerScope) -> StoreResult<Option<std::time::Duration>>;
}
