//! Running work on a pooled connection: one retry when the connection was found closed
//! before anything was sent, and the per-statement transaction of an unprepared pool.

use super::PgStore;
use crate::error::{PgError, never_sent};
use diesel_async::pooled_connection::bb8::PooledConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use pgqueue_ports::{StoreError, StoreResult};
use std::future::Future;

impl PgStore {
    /// A pooled connection, for the test-support helpers.
    #[cfg(feature = "test-support")]
    pub(crate) async fn connection(
        &self,
    ) -> Result<PooledConnection<'_, AsyncPgConnection>, PgError> {
        self.conn().await
    }

    /// A connection from the pool, or the pool's error (a timeout names the server).
    pub(super) async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, PgError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PgError::Pool(Box::new(e)))
    }
}

/// An async closure over a connection whose future is `Send` (the store's futures must be):
/// `AsyncFnOnce` alone cannot say so on stable Rust, so this names the future the closure
/// returns and bounds it.
pub(crate) trait ConnFn<'c, T>:
    FnOnce(&'c mut AsyncPgConnection) -> <Self as ConnFn<'c, T>>::Fut
{
    /// The future the closure returns.
    type Fut: Future<Output = Result<T, PgError>> + Send;
}

impl<'c, T, F, Fut> ConnFn<'c, T> for F
where
    F: FnOnce(&'c mut AsyncPgConnection) -> Fut,
    Fut: Future<Output = Result<T, PgError>> + Send,
{
    type Fut = Fut;
}

/// Runs `work` in a transaction of its own that first runs `set_path` when given (`SET LOCAL
/// search_path …`, an unprepared pool's schema). A transaction-mode pooler hands the
/// connection to other clients between transactions, so the schema must not outlive this one.
pub(crate) async fn in_schema<T, F>(
    conn: &mut AsyncPgConnection,
    set_path: Option<&str>,
    work: F,
) -> Result<T, PgError>
where
    F: for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, PgError>
        + for<'c> ConnFn<'c, T>
        + Send,
    T: Send,
{
    conn.transaction(async |c| {
        if let Some(set) = set_path {
            c.batch_execute(set).await?;
        }
        work(c).await
    })
    .await
}

impl PgStore {
    /// Runs `work` on a pooled connection, and once more on another connection if the first
    /// was found closed before the statement was sent (a backend killed while idle), which
    /// cannot apply anything twice. Errors leave as the port's [`StoreError`].
    ///
    /// With `prepared: false` the work runs inside a transaction of its own (see
    /// [`PgOptions::prepared`](crate::PgOptions::prepared)).
    pub(crate) async fn with_conn<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, PgError>
            + for<'c> ConnFn<'c, T>
            + Clone
            + Send,
        T: Send,
    {
        self.on_pool(true, work).await
    }

    /// [`PgStore::with_conn`], wrapping `work` in a transaction for an unprepared pool only
    /// when `wrap` (VACUUM cannot run in one: its caller wraps its other statements itself).
    pub(super) async fn on_pool<T, F>(&self, wrap: bool, work: F) -> StoreResult<T>
    where
        F: for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> Result<T, PgError>
            + for<'c> ConnFn<'c, T>
            + Clone
            + Send,
        T: Send,
    {
        let mut retried = false;
        loop {
            let mut pooled = self.conn().await?;
            let done = match self.inner.unprepared.as_ref().filter(|_| wrap) {
                None => (work.clone())(&mut pooled).await,
                Some(u) => in_schema(&mut pooled, u.set_path.as_deref(), work.clone()).await,
            };
            match done {
                Err(e) if !retried && never_sent(&e) => retried = true,
                other => return other.map_err(StoreError::from),
            }
        }
    }
}
