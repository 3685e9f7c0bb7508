//! The Manager: every queue, task and ticker operation of one namespace.
//!
//! It turns raw user input (names as strings, metas with optional fields) into validated
//! domain values, applies the rules that need more than one port call (a ticker's queue must
//! exist, a delay must not be in the past), and maps storage errors to application errors.
//! It is cheap to clone and to rebind to another namespace.

use crate::coalesce::GroupCommit;
use crate::error::Result;
use crate::observer::{NoopObserver, Observer};
use pgqueue_domain::Namespace;
use pgqueue_ports::{Store, Wakeup};
use std::sync::Arc;
use tokio::sync::broadcast;

pub use events::EVENT_POLL;
pub use operate::MAX_REDRIVE;
pub(crate) use waiting::held_back_for;
pub use waiting::{MAX_RETAIN, MAX_WAIT};

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

    /// Whether the storage can serve requests (`GET /readyz`): it answers and its schema is
    /// current.
    pub async fn ready(&self) -> Result<()> {
        Ok(self.store.ready().await?)
    }

    /// Whether wake-ups arrive as the storage's notifications (`true`) or from a polling
    /// timer because notifications cannot (`pgqueue_notify_mode`).
    pub fn notified(&self) -> bool {
        !self.store.signal().polling()
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
}

/// Resolves when a wake-up may have moved a ticker maturity of `ns` earlier.
pub(crate) async fn ticker_changed(wakeups: &mut broadcast::Receiver<Wakeup>, ns: &Namespace) {
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

mod events;
mod operate;
mod queues;
mod tasks;
mod tickers;
mod waiting;

#[cfg(test)]
mod tests;
