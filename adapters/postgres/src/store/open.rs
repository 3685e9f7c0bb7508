//! Opening a [`PgStore`]: migrations (or the check that they are current), the pool in
//! either statement mode, and the listener; and the one-shot migration commands.

use super::{Inner, PgStore, Unprepared};
use crate::connect::ConnSpec;
use crate::debounce::Debouncer;
use crate::error::PgError;
use crate::migrate::MigrationState;
use crate::options::PgOptions;
use crate::{listen, maintenance, migrate};
use pgqueue_ports::Signal;
use std::sync::Arc;
use tokio::sync::watch;

impl PgStore {
    /// Connects, applies pending migrations, opens the pool and starts the listener.
    /// Fails with a message naming the server when it cannot be reached.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, PgError> {
        let schema = options.schema.as_deref().filter(|s| !s.is_empty());
        if let Some(s) = schema.filter(|s| !migrate::valid_schema(s)) {
            return Err(PgError::InvalidSchema(s.to_string()));
        }
        // Migrations and LISTEN want a session of their own: the direct URL when given.
        let direct_url = options
            .listen_url
            .as_deref()
            .filter(|u| !u.trim().is_empty());
        // Without one, an unprepared store's URL leads through the pooler, so those
        // connections keep nothing prepared either (migrations run in one transaction).
        // Their schema is set by `SET LOCAL` (a pooler refuses startup options).
        let set_path = schema.map(|s| format!("SET LOCAL search_path TO \"{s}\""));
        let direct = match direct_url {
            None if !options.prepared => {
                ConnSpec::new(url, None, options.connect_timeout)?.unprepared()
            }
            _ => ConnSpec::new(direct_url.unwrap_or(url), schema, options.connect_timeout)?,
        };
        if options.migrate {
            migrate::run(&direct, schema).await?;
        } else {
            migrate::require_current(&direct, set_path.as_deref()).await?;
        }
        let (pool, unprepared) = if options.prepared {
            let spec = ConnSpec::new(url, schema, options.connect_timeout)?;
            (spec.pool(options.pool_size).await?, None)
        } else {
            let spec = ConnSpec::new(url, None, options.connect_timeout)?.unprepared();
            (
                spec.pool(options.pool_size).await?,
                Some(Unprepared { set_path }),
            )
        };
        let signal = Signal::default();
        let (stop, stopped) = watch::channel(false);
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                clock: options.clock,
                signal: signal.clone(),
                stop,
                debounce: Debouncer::new(options.notify_debounce),
                horizon: maintenance::Horizon::default(),
                schema: schema.map(str::to_string),
                unprepared,
                floors: Arc::default(),
            }),
        };
        let by_notify = listen::open(&store, &direct).await?;
        let floors = store.inner.floors.clone();
        tokio::spawn(listen::run(direct, by_notify, signal, floors, stopped));
        Ok(store)
    }

    /// Applies the pending migrations to the database at `url` and answers the state of
    /// each (`pgqueue migrate`); refuses a schema newer than this binary.
    pub async fn migrate(url: &str, options: &PgOptions) -> Result<Vec<MigrationState>, PgError> {
        let spec = Self::spec(url, options)?;
        migrate::run(&spec, options.schema.as_deref().filter(|s| !s.is_empty())).await?;
        migrate::status(&mut spec.establish().await?, None).await
    }

    /// The state of each migration of this binary in the database at `url`, changing
    /// nothing (`pgqueue migrate --status`); refuses a schema newer than this binary.
    pub async fn migration_status(
        url: &str,
        options: &PgOptions,
    ) -> Result<Vec<MigrationState>, PgError> {
        let spec = Self::spec(url, options)?;
        migrate::status(&mut spec.establish().await?, None).await
    }

    fn spec(url: &str, options: &PgOptions) -> Result<ConnSpec, PgError> {
        let schema = options.schema.as_deref().filter(|s| !s.is_empty());
        if let Some(s) = schema.filter(|s| !migrate::valid_schema(s)) {
            return Err(PgError::InvalidSchema(s.to_string()));
        }
        ConnSpec::new(url, schema, options.connect_timeout)
    }
}
