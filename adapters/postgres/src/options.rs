//! [`PgOptions`]: how a [`PgStore`](crate::PgStore) connects.

use pgqueue_ports::{Clock, StorageClock};
use std::sync::Arc;
use std::time::Duration;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Pooled connections (the listener has one more of its own). Default 10.
    pub pool_size: u32,
    /// The schema holding pgqueue's tables (created if missing); `None`: the server's default
    /// `search_path` (usually `public`).
    pub schema: Option<String>,
    /// Where time comes from: [`StorageClock`] (the database's clock) in production.
    pub clock: Arc<dyn Clock>,
    /// How long to wait for a connection (opening one, or a free one from the pool).
    pub connect_timeout: Duration,
    /// How long one wake-up of a queue covers later creates into it from this process (see
    /// the crate docs, "NOTIFY protocol"): fewer NOTIFYs under bursts, at most this much
    /// later a wake-up for tasks created inside the window. Default 2 ms; zero notifies
    /// every create.
    pub notify_debounce: Duration,
    /// Apply pending migrations when connecting (default). `false` (`run --no-migrate`)
    /// refuses to connect while any is pending, for deployments that migrate separately.
    pub migrate: bool,
    /// Keep each pooled connection's statements prepared (default). `false`
    /// (`--pg.prepared=false`) is for poolers that cannot carry a prepared statement from
    /// one transaction to the next (PgBouncer in transaction mode before 1.21): every
    /// statement then runs inside a transaction of its own, is parsed there and closed before
    /// the commit, so nothing outlives the transaction on the server connection the pooler
    /// lent; no startup options are sent (the schema is set with `SET LOCAL` in each
    /// transaction). It costs a parse and two more round trips (`BEGIN`, `COMMIT`) per
    /// statement; README and docs/deploy.md give the measured drain.
    pub prepared: bool,
    /// A direct connection (not through a transaction-mode pooler) for LISTEN and the
    /// migrations. `None`: the pool's URL. The listener checks a LISTEN → NOTIFY round trip
    /// when it connects and falls back to polling when no notification comes back.
    pub listen_url: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            schema: None,
            clock: Arc::new(StorageClock),
            connect_timeout: Duration::from_secs(10),
            notify_debounce: crate::debounce::DEFAULT_WINDOW,
            migrate: true,
            prepared: true,
            listen_url: None,
        }
    }
}
