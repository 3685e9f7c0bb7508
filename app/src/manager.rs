//! The Manager: every queue, task and ticker operation of one namespace.
//!
//! It turns raw user input (names as strings, metas with optional fields) into validated
//! domain values, applies the rules that need more than one port call (a ticker's queue must
//! exist, a delay must not be in the past), and maps storage errors to application errors.
//! It is cheap to clone and to rebind to another namespace.

use crate::coalesce::GroupCommit;
use crate::error::{Error, Result};
use crate::observer::{NoopObserver, Observer};
use pgqueue_domain::{
    Duration as WireDuration, Error as DomainError, Namespace, NewTask, Outcome, Page, Queue,
    QueueMeta, QueueName, StatusCount, Task, TaskFilter, TaskId, TaskMeta, Ticker, TickerMeta,
    TickerName, WorkerName,
};
use pgqueue_ports::{Listing, Store, TickerScope, Wakeup};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The longest a ticker waiter sleeps without looking again: a safety net for a lost
/// wake-up, short enough that a ticker still fires within a second of maturing.
const MAX_TICKER_SLEEP: Duration = Duration::from_secs(1);
/// The shortest sleep between two claims, so a ticker locked by another claimer (which the
/// claim skips) does not make waiters spin.
const MIN_TICKER_SLEEP: Duration = Duration::from_millis(5);

/// The most tasks one batch create may carry.
pub const MAX_BATCH: usize = 10_000;

/// Queue, task and ticker operations bound to one namespace.
#[derive(Clone)]
pub struct Manager {
    store: Arc<dyn Store>,
    namespace: Namespace,
    observer: Arc<dyn Observer>,
    /// Set by [`Manager::with_group_commit`]: single retains and releases are coalesced.
    group_commit: Option<Arc<GroupCommit>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("namespace", &self.namespace)
            .field("group_commit", &self.group_commit.is_some())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager of the `default` namespace on `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            namespace: Namespace::default(),
            observer: Arc::new(NoopObserver),
            group_commit: None,
        }
    }

    /// The same manager bound to another namespace. Empty, invalid and the reserved
    /// `pgqueue` namespace are refused. Group commit is not carried over (it is bound to the
    /// namespace it was started for).
    pub fn with_namespace(&self, namespace: &str) -> Result<Self> {
        let namespace = Namespace::parse_application(namespace)?;
        Ok(Self {
            namespace,
            group_commit: None,
            ..self.clone()
        })
    }

    /// A manager of the system namespace, for pgqueue's own maintenance only: an embedder
    /// must not reach the reserved namespace.
    pub(crate) fn system(&self) -> Self {
        Self {
            namespace: Namespace::system(),
            group_commit: None,
            ..self.clone()
        }
    }

    /// The same manager, reporting task events to `observer` (metrics). Call it before
    /// [`Manager::with_group_commit`], which it undoes.
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Self {
        Self {
            observer,
            group_commit: None,
            ..self
        }
    }

    /// The same manager, coalescing concurrent single-task calls ([`Manager::next_task`],
    /// [`Manager::next_task_from`], [`Manager::release_task`]) into one statement each:
    /// for a server whose many clients each retain and release one task per request. Each
    /// call keeps its own answer and returns once that statement committed; a lone call goes
    /// out at once. The flushers run on the current Tokio runtime and stop when the last
    /// clone of this manager is dropped; outside a runtime the manager is returned as it is.
    pub fn with_group_commit(self) -> Self {
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::warn!("no Tokio runtime: group commit stays off");
            return self;
        }
        let plain = Self {
            group_commit: None,
            ..self.clone()
        };
        Self {
            group_commit: Some(Arc::new(GroupCommit::start(plain))),
            ..self
        }
    }

    /// The namespace this manager serves.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The storage port, for the background runtimes (and tests, with `test-support`).
    #[cfg(feature = "test-support")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The storage port, for the background runtimes.
    #[cfg(not(feature = "test-support"))]
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A manager of the system namespace, for tests of the system's own tickers.
    #[cfg(feature = "test-support")]
    pub fn system_for_tests(&self) -> Self {
        self.system()
    }

    /// Every namespace with a queue or a ticker, sorted (the system namespace included).
    pub async fn list_namespaces(&self) -> Result<Vec<Namespace>> {
        Ok(self.store.list_namespaces().await?)
    }

    // ---- queues ----

    /// Creates the queue with defaults if it does not exist, then applies the given fields.
    pub async fn register_queue(&self, meta: QueueMeta) -> Result<Queue> {
        let (name, patch) = meta.validate_new()?;
        Ok(self
            .store
            .register_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// Creates a queue; conflict if it exists.
    pub async fn create_queue(&self, meta: QueueMeta) -> Result<Queue> {
        let (name, patch) = meta.validate_new()?;
        Ok(self
            .store
            .create_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// The queue named `name`.
    pub async fn get_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self.store.get_queue(&self.namespace, &name).await?)
    }

    /// Changes only the given fields; `queue` renames (its tasks follow).
    pub async fn update_queue(&self, name: &str, meta: QueueMeta) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        let patch = meta.validate()?;
        if patch.is_empty() {
            return Err(DomainError::NoPatchValues.into());
        }
        Ok(self
            .store
            .update_queue(&self.namespace, &name, &patch)
            .await?)
    }

    /// Deletes the queue and its tasks; returns the deleted queue.
    pub async fn delete_queue(&self, name: &str) -> Result<Queue> {
        let name = QueueName::parse(name)?;
        Ok(self.store.delete_queue(&self.namespace, &name).await?)
    }

    /// Queues ordered by name.
    pub async fn list_queues(&self, page: Page) -> Result<Listing<Queue>> {
        Ok(self.store.list_queues(&self.namespace, page).await?)
    }

    /// Deletes the queue's released, failed and expired tasks now and returns them.
    pub async fn clean_queue(&self, name: &str) -> Result<Vec<Task>> {
        let name = QueueName::parse(name)?;
        Ok(self.store.clean_queue(&self.namespace, &name).await?)
    }

    /// Task counts per queue and status, zeros included.
    pub async fn queue_statuses(&self) -> Result<Vec<StatusCount>> {
        Ok(self.store.queue_statuses(&self.namespace).await?)
    }

    // ---- tasks ----

    /// Creates one task in `queue`.
    pub async fn create_task(&self, queue: &str, meta: TaskMeta) -> Result<Task> {
        let mut tasks = self.create_tasks(queue, vec![meta]).await?;
        tasks
            .pop()
            .ok_or_else(|| Error::Storage("storage created no task".into()))
    }

    /// Creates many tasks in `queue` in one statement: all or nothing.
    pub async fn create_tasks(&self, queue: &str, metas: Vec<TaskMeta>) -> Result<Vec<Task>> {
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
        self.observer
            .tasks_created(&self.namespace, &queue, created.len());
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
        let tasks = self
            .store
            .retain_tasks(&self.namespace, worker, queues, limit.max(1))
            .await?;
        for t in &tasks {
            self.observer.task_retained(t);
        }
        Ok(tasks)
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
        let tasks = self
            .store
            .retain_tasks_for(&self.namespace, workers, queues)
            .await?;
        for t in &tasks {
            self.observer.task_retained(t);
        }
        Ok(tasks)
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

    // ---- tickers ----

    /// Checks that a ticker's target queue exists in this namespace.
    async fn check_ticker_queue(&self, queue: Option<Option<&QueueName>>) -> Result<()> {
        if let Some(Some(q)) = queue {
            self.store.get_queue(&self.namespace, q).await?;
        }
        Ok(())
    }

    /// Creates the ticker if missing, then applies the given fields; an existing ticker
    /// keeps its timestamp, so re-registering does not fire it again.
    pub async fn register_ticker(&self, meta: TickerMeta) -> Result<Ticker> {
        let (name, patch) = meta.validate_new()?;
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .register_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// Creates a ticker; conflict if it exists. It fires at the next poll.
    pub async fn create_ticker(&self, meta: TickerMeta) -> Result<Ticker> {
        let (name, patch) = meta.validate_new()?;
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .create_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// The ticker named `name`.
    pub async fn get_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self.store.get_ticker(&self.namespace, &name).await?)
    }

    /// Changes only the given fields; `ticker` renames.
    pub async fn update_ticker(&self, name: &str, meta: TickerMeta) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        let patch = meta.validate()?;
        if patch.is_empty() {
            return Err(DomainError::NoPatchValues.into());
        }
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .update_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// Deletes the ticker; returns it.
    pub async fn delete_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self.store.delete_ticker(&self.namespace, &name).await?)
    }

    /// Tickers ordered by name.
    pub async fn list_tickers(&self, page: Page) -> Result<Listing<Ticker>> {
        Ok(self.store.list_tickers(&self.namespace, page).await?)
    }

    /// Claims one matured ticker without a queue, or none. Each maturity goes to exactly
    /// one claimer across all processes.
    pub async fn next_ticker(&self) -> Result<Option<Ticker>> {
        Ok(self.store.claim_ticker(&self.namespace).await?)
    }

    /// Waits for the next matured ticker without a queue and claims it. It sleeps until the
    /// earliest maturity (on the storage's clock) or a ticker wake-up, never polling faster
    /// than needed. The claim is the last await, so dropping the future between claims
    /// loses no maturity (the SSE stream relies on that when a client leaves).
    pub async fn wait_for_ticker(&self) -> Result<Ticker> {
        let mut wakeups = self.store.signal().subscribe();
        let scope = TickerScope::Deliveries(self.namespace.clone());
        loop {
            if let Some(ticker) = self.next_ticker().await? {
                return Ok(ticker);
            }
            let wait = self
                .store
                .next_maturity(&scope)
                .await?
                .unwrap_or(MAX_TICKER_SLEEP)
                .clamp(MIN_TICKER_SLEEP, MAX_TICKER_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ticker_changed(&mut wakeups, &self.namespace) => {}
            }
        }
    }
}

/// Resolves when a wake-up may have moved a ticker maturity of `ns` earlier.
async fn ticker_changed(wakeups: &mut broadcast::Receiver<Wakeup>, ns: &Namespace) {
    loop {
        match wakeups.recv().await {
            Ok(Wakeup::Ticker { namespace }) if &namespace == ns => return,
            Ok(Wakeup::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(_) => {}
            // The store is gone: nothing will wake us; the sleep still will.
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgqueue_ports::{MockStore, StoreError};
    use serde_json::json;

    fn manager(store: MockStore) -> Manager {
        Manager::new(Arc::new(store)).with_namespace("app").unwrap()
    }

    #[test]
    fn namespaces_are_validated_and_the_system_one_refused() {
        let m = Manager::new(Arc::new(MockStore::new()));
        assert_eq!(m.namespace().as_str(), "default");
        assert!(matches!(
            m.with_namespace(""),
            Err(Error::Invalid(DomainError::MissingName("namespace")))
        ));
        assert!(matches!(
            m.with_namespace("pgqueue"),
            Err(Error::Invalid(DomainError::ReservedNamespace(_)))
        ));
        assert_eq!(
            m.with_namespace(" MyApp ").unwrap().namespace().as_str(),
            "myapp"
        );
    }

    #[tokio::test]
    async fn storage_failures_become_storage_errors() {
        let mut store = MockStore::new();
        store
            .expect_get_queue()
            .returning(|_, _| Err(StoreError::Unavailable("connection refused".into())));
        let err = manager(store).get_queue("emails").await.unwrap_err();
        assert!(matches!(err, Error::Storage(m) if m.contains("connection refused")));
    }

    #[tokio::test]
    async fn not_found_passes_through_with_its_message() {
        let mut store = MockStore::new();
        store
            .expect_get_task()
            .withf(|ns, id| ns.as_str() == "app" && *id == 42)
            .returning(|_, id| Err(StoreError::task_not_found(id)));
        assert_eq!(
            manager(store).get_task(42).await.unwrap_err(),
            Error::NotFound("task 42 not found".into())
        );
    }

    #[tokio::test]
    async fn invalid_input_never_reaches_storage() {
        // A MockStore with no expectations panics on any call: these must fail before it.
        let m = manager(MockStore::new());
        assert!(matches!(
            m.get_queue("bad name").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            m.create_task("q", TaskMeta::default()).await,
            Err(Error::Invalid(DomainError::MissingPayload))
        ));
        assert!(matches!(
            m.create_tasks("q", vec![]).await,
            Err(Error::Invalid(_))
        ));
        let too_many = vec![TaskMeta::new(json!(1)); MAX_BATCH + 1];
        assert!(matches!(
            m.create_tasks("q", too_many).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            m.next_task(" ", &[]).await,
            Err(Error::Invalid(DomainError::MissingWorker))
        ));
        assert!(matches!(
            m.update_queue("q", QueueMeta::default()).await,
            Err(Error::Invalid(DomainError::NoPatchValues))
        ));
        assert!(matches!(
            m.update_ticker("t", TickerMeta::default()).await,
            Err(Error::Invalid(DomainError::NoPatchValues))
        ));
    }

    #[tokio::test]
    async fn a_delay_in_the_past_is_checked_against_the_storage_clock() {
        let mut store = MockStore::new();
        let now = chrono::Utc::now();
        store.expect_now().times(1).returning(move || Ok(now));
        let meta = TaskMeta::new(json!(1)).delayed_until(now - chrono::TimeDelta::seconds(5));
        let err = manager(store).create_task("q", meta).await.unwrap_err();
        assert_eq!(err, Error::Invalid(DomainError::DelayedInPast));
    }

    #[tokio::test]
    async fn undelayed_tasks_do_not_ask_the_clock() {
        let mut store = MockStore::new();
        store.expect_now().never();
        store
            .expect_create_tasks()
            .withf(|ns, q, t| ns.as_str() == "app" && q.as_str() == "emails" && t.len() == 2)
            .returning(|_, _, _| Err(StoreError::not_found("queue", "emails")));
        let err = manager(store)
            .create_tasks(
                " Emails ",
                vec![TaskMeta::new(json!(1)), TaskMeta::new(json!(2))],
            )
            .await
            .unwrap_err();
        assert_eq!(err, Error::NotFound("queue \"emails\" not found".into()));
    }

    #[tokio::test]
    async fn a_ticker_queue_must_exist() {
        let mut store = MockStore::new();
        store
            .expect_get_queue()
            .withf(|_, q| q.as_str() == "reports")
            .returning(|_, q| Err(StoreError::not_found("queue", q)));
        store.expect_create_ticker().never();
        let meta = TickerMeta {
            ticker: Some("hourly".into()),
            queue: Some(Some("reports".into())),
            ..Default::default()
        };
        assert!(matches!(
            manager(store).create_ticker(meta).await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn retaining_from_an_unknown_queue_is_not_found_but_an_empty_one_is_none() {
        let mut store = MockStore::new();
        store
            .expect_retain_tasks()
            .returning(|_, _, _, _| Ok(vec![]));
        store
            .expect_get_queue()
            .withf(|_, q| q.as_str() == "ghost")
            .returning(|_, q| Err(StoreError::not_found("queue", q)));
        store
            .expect_get_queue()
            .withf(|_, q| q.as_str() == "empty")
            .returning(|ns, q| Ok(Queue::new(ns.clone(), q.clone())));
        let m = manager(store);
        assert!(matches!(
            m.next_task_from("w", "ghost").await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(m.next_task_from("w", "empty").await.unwrap(), None);
        assert_eq!(m.next_task("w", &["ghost"]).await.unwrap(), None);
    }

    #[tokio::test]
    async fn refused_releases_are_conflicts() {
        let mut store = MockStore::new();
        store
            .expect_release_task()
            .returning(|_, _, _| Err(StoreError::Rule(DomainError::NotRetained)));
        let err = manager(store)
            .release_task(1, Outcome::done())
            .await
            .unwrap_err();
        assert_eq!(err, Error::Conflict("task is not retained".into()));
    }
}
