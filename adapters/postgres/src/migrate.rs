//! Applying the embedded migrations at start-up, safely from many processes at once.
//!
//! Every process that connects runs the pending migrations; a session-level advisory lock
//! serialises them, so two servers starting together neither race on `CREATE` nor apply a
//! migration twice. Diesel's runner is synchronous, so it runs on a blocking thread over the
//! async connection (works on any tokio runtime flavour).

use crate::connect::ConnSpec;
use crate::error::PgError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQL of `migrations/`, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The advisory lock key that serialises migrations (arbitrary, fixed: "pgqueue" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6771_7565_7565;

/// Creates the schema if asked and applies every pending migration, under the lock.
pub(crate) async fn run(spec: &ConnSpec, schema: Option<&str>) -> Result<(), PgError> {
    let mut conn = spec.establish().await?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .await
        .map_err(|e| PgError::Migrate(e.into()))?;
    if let Some(schema) = schema {
        conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(|e| PgError::Migrate(e.into()))?;
    }
    let conn = tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        let applied = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(PgError::Migrate);
        (wrapper.into_inner(), applied)
    })
    .await
    .map_err(|e| PgError::Migrate(e.into()));
    let (mut conn, applied) = conn?;
    let applied = applied?;
    if applied > 0 {
        tracing::info!(applied, "applied pgqueue migrations");
    }
    // Dropping the session would release the lock too; say it explicitly anyway.
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut conn)
        .await
        .map_err(|e| PgError::Migrate(e.into()))?;
    Ok(())
}

/// Whether `schema` is a plain identifier that can be put in `search_path` and quoted.
pub(crate) fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}
