//! Opening connections: one recipe for the pool, the listener and the migrator.
//!
//! Every connection is opened the same way so that all of them see pgqueue's tables through
//! the same `search_path` (the schema option) and fail with the same readable error naming
//! the server they tried.

use crate::error::PgError;
use diesel::ConnectionError;
use diesel::connection::CacheSize;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use std::time::Duration;
use tokio_postgres::config::Host;

/// Pooled connections plan their prepared statements once. PostgreSQL's default re-plans a
/// statement on every execution while its custom plans look cheaper than the generic one,
/// and the hot-path statements are small enough that planning was a good part of their cost
/// (a server coalescing single retains and releases went from ~1,400 to ~1,900 tasks/s).
/// Only named prepared statements, the hot path's, are affected.
///
/// JIT compilation is off for the same connections: every statement pgqueue runs touches a
/// few rows through an index, and a compilation costs 50–100 ms each time it runs (nothing
/// keeps it). A generic plan's estimate can still pass `jit_above_cost` when the statistics
/// of a deep or bloated queue make every row look expensive; it did for the one-queue claim
/// in the soak under a held horizon (~100 ms of JIT per 0.4 ms claim, the queue fell
/// behind). Options in the URL come after these, so a URL may still choose otherwise.
const GENERIC_PLANS: &str = "-c plan_cache_mode=force_generic_plan -c jit=off";

/// Where and how to connect; cheap to clone into every connection attempt.
#[derive(Clone)]
pub(crate) struct ConnSpec {
    config: tokio_postgres::Config,
    /// `host:port` for error messages.
    pub(crate) target: String,
    timeout: Duration,
    /// Whether connections keep their statements prepared (see `PgOptions::prepared`).
    prepared: bool,
}

impl ConnSpec {
    /// Parses `url` and pins the session's `search_path` to `schema` when one is given.
    pub(crate) fn new(url: &str, schema: Option<&str>, timeout: Duration) -> Result<Self, PgError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(PgError::InvalidUrl)?;
        config.connect_timeout(timeout);
        if let Some(schema) = schema {
            let options = match config.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
                _ => format!("-c search_path={schema}"),
            };
            config.options(&options);
        }
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        Ok(Self {
            config,
            target: format!("{host}:{port}"),
            timeout,
            prepared: true,
        })
    }

    /// The same spec for connections that keep no statement prepared (for a
    /// transaction-mode pooler; see `PgOptions::prepared`).
    pub(crate) fn unprepared(mut self) -> Self {
        self.prepared = false;
        self
    }

    /// Opens one connection (never pooled: the caller owns it).
    pub(crate) async fn establish(&self) -> Result<AsyncPgConnection, PgError> {
        let fail = |reason: String, cause: Option<crate::error::Cause>| PgError::Connect {
            target: self.target.clone(),
            reason,
            cause,
        };
        let (client, mut connection) =
            tokio::time::timeout(self.timeout, self.config.connect(tokio_postgres::NoTls))
                .await
                .map_err(|_| fail(format!("timed out after {:?}", self.timeout), None))?
                .map_err(|e| fail(error_chain(&e), Some(Box::new(e))))?;
        if self.prepared {
            return AsyncPgConnection::try_from_client_and_connection(client, connection)
                .await
                .map_err(|e| fail(e.to_string(), Some(Box::new(e))));
        }
        // diesel-async's set-up runs two statements it keeps prepared (`SET TIME ZONE`,
        // `SET CLIENT_ENCODING`). Through a transaction-mode pooler they would stay behind
        // on whichever server connections ran them, under names another process reuses
        // ("prepared statement s5 already exists"). So the set-up runs in a transaction,
        // and turning the cache off closes them before it commits.
        let begun = {
            let begin = std::pin::pin!(client.batch_execute("BEGIN"));
            match futures::future::select(begin, &mut connection).await {
                futures::future::Either::Left((begun, _)) => begun,
                futures::future::Either::Right(_) => {
                    return Err(fail("the connection closed during set-up".into(), None));
                }
            }
        };
        begun.map_err(|e| fail(error_chain(&e), Some(Box::new(e))))?;
        let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|e| fail(e.to_string(), Some(Box::new(e))))?;
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        conn.batch_execute("COMMIT")
            .await
            .map_err(|e| fail(e.to_string(), Some(Box::new(e))))?;
        Ok(conn)
    }

    /// A pool of `size` connections opened by [`ConnSpec::establish`], whose prepared
    /// statements use generic plans and no JIT (see [`GENERIC_PLANS`]).
    /// For an unprepared spec (a transaction-mode pooler) the connections keep no
    /// statement prepared and get no startup options of ours: a pooler rejects or drops
    /// them, and a plan setting would only make one-shot statements plan worse.
    pub(crate) async fn pool(&self, size: u32) -> Result<Pool<AsyncPgConnection>, PgError> {
        let mut spec = self.clone();
        if self.prepared {
            let options = match spec.config.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{GENERIC_PLANS} {o}"),
                _ => GENERIC_PLANS.to_string(),
            };
            spec.config.options(&options);
        }
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        // Like `RecyclingMethod::Fast` (no `SELECT 1` round trip per checkout), but a
        // connection whose backend is already gone is dropped instead of handed out.
        config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
            let broken = PoolableConnection::is_broken(conn);
            Box::pin(async move {
                if broken {
                    Err(diesel::result::Error::BrokenTransactionManager)
                } else {
                    Ok(())
                }
            })
        }));
        config.custom_setup = Box::new(move |_url| {
            let spec = spec.clone();
            Box::pin(async move {
                spec.establish()
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))
            })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(String::new(), config);
        Pool::builder()
            .max_size(size.max(1))
            .connection_timeout(self.timeout)
            .build(manager)
            .await
            .map_err(|e| PgError::Pool(Box::new(e)))
    }
}

/// The error with its causes, so "connection refused" is not hidden behind "error connecting".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
