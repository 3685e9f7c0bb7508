//! Applying the embedded migrations at start-up, safely from many processes at once.
//!
//! Every process that connects runs the pending migrations; a transaction-level advisory
//! lock serialises them, so two servers starting together neither race on `CREATE` nor apply a
//! migration twice. Diesel's runner is synchronous, so it runs on a blocking thread over the
//! async connection (works on any tokio runtime flavour).

use crate::connect::ConnSpec;
use crate::error::PgError;
use crate::store::in_schema;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection, TransactionManager,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The SQL of `migrations/`, compiled into the binary.
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The advisory lock key that serialises migrations (arbitrary, fixed: "pgqueue" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6771_7565_7565;

/// One migration of the binary, and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's folder name (`2026-12-02-010000_task_events`).
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// The binary's migrations, in order, as (stored version, name).
fn embedded() -> Result<Vec<(String, String)>, PgError> {
    let migrations = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(PgError::Migrate)?;
    Ok(migrations
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect())
}

/// The versions the database has applied (none when it has never been migrated).
async fn applied(conn: &mut AsyncPgConnection) -> Result<Vec<String>, PgError> {
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let exists: Vec<Version> = diesel::sql_query(
        "SELECT 'x' AS version WHERE to_regclass('__diesel_schema_migrations') IS NOT NULL",
    )
    .load(conn)
    .await
    .map_err(|e| PgError::Migrate(e.into()))?;
    if exists.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)
            .await
            .map_err(|e| PgError::Migrate(e.into()))?;
    Ok(rows.into_iter().map(|v| v.version).collect())
}

/// Every migration of the binary with whether it is applied; refuses a database that has
/// applied a migration this binary does not know (a newer pgqueue migrated it: running an
/// older one against it could break what the newer one relies on).
///
/// Reads in a transaction (so it also works through a transaction-mode pooler), first
/// running `set_path` when given (`SET LOCAL search_path`, for such a pooler's connections).
pub(crate) async fn status(
    conn: &mut AsyncPgConnection,
    set_path: Option<&str>,
) -> Result<Vec<MigrationState>, PgError> {
    let known = embedded()?;
    let done = in_schema(conn, set_path, async |c| applied(c).await).await?;
    if let Some(unknown) = done.iter().find(|v| !known.iter().any(|(k, _)| k == *v)) {
        return Err(PgError::Migrate(
            format!(
                "the database schema is newer than this binary: migration {unknown} is applied but unknown here; run the newer pgqueue (or restore the older schema)"
            )
            .into(),
        ));
    }
    Ok(known
        .into_iter()
        .map(|(version, name)| MigrationState {
            applied: done.contains(&version),
            name,
        })
        .collect())
}

/// Refuses to start on a schema with pending migrations (`--no-migrate`) or a newer one.
pub(crate) async fn require_current(
    spec: &ConnSpec,
    set_path: Option<&str>,
) -> Result<(), PgError> {
    let mut conn = spec.establish().await?;
    let pending: Vec<String> = status(&mut conn, set_path)
        .await?
        .into_iter()
        .filter(|m| !m.applied)
        .map(|m| m.name)
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(PgError::Migrate(
            format!(
                "{} migration(s) pending ({}): run `pgqueue migrate URL` first, or start without --no-migrate",
                pending.len(),
                pending.join(", ")
            )
            .into(),
        ))
    }
}

/// Creates the schema if asked and applies every pending migration, all in one transaction
/// under a transaction-level advisory lock: nothing is left behind on the server session if
/// the process dies or a statement fails (a session lock leaked through a transaction-mode
/// pooler would block every later migrator), and the statements all run on one server
/// connection even through such a pooler.
pub(crate) async fn run(spec: &ConnSpec, schema: Option<&str>) -> Result<(), PgError> {
    let mut conn = spec.establish().await?;
    Manager::begin_transaction(&mut conn)
        .await
        .map_err(|e| PgError::Migrate(e.into()))?;
    match migrate_in_transaction(conn, schema).await? {
        (mut conn, Ok(applied)) => {
            Manager::commit_transaction(&mut conn)
                .await
                .map_err(|e| PgError::Migrate(e.into()))?;
            if applied > 0 {
                tracing::info!(applied, "applied pgqueue migrations");
            }
            Ok(())
        }
        (mut conn, Err(e)) => {
            // Closing the connection would end the transaction too; say it while it answers.
            let _ = Manager::rollback_transaction(&mut conn).await;
            Err(e)
        }
    }
}

/// The transaction manager of the async connection (begin, commit, rollback by hand around
/// the synchronous migration harness).
type Manager = <AsyncPgConnection as AsyncConnection>::TransactionManager;

/// Takes the lock and applies the migrations inside the open transaction; gives the
/// connection back with the outcome so the caller can end the transaction. `Err` only when
/// the connection was lost with the migration thread (closing it rolled the work back).
async fn migrate_in_transaction(
    mut conn: AsyncPgConnection,
    schema: Option<&str>,
) -> Result<(AsyncPgConnection, Result<usize, PgError>), PgError> {
    let ready = async {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .await
            .map_err(|e| PgError::Migrate(e.into()))?;
        if let Some(schema) = schema {
            // The search path again, for a connection through a pooler that got no startup
            // options (see `PgOptions::prepared`).
            conn.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET LOCAL search_path TO \"{schema}\""
            ))
            .await
            .map_err(|e| PgError::Migrate(e.into()))?;
        }
        // A newer binary's schema is refused before anything is applied.
        status(&mut conn, None).await.map(|_| ())
    }
    .await;
    if let Err(e) = ready {
        return Ok((conn, Err(e)));
    }
    tokio::task::spawn_blocking(move || {
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> =
            AsyncConnectionWrapper::from(conn);
        let applied = wrapper
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.len())
            .map_err(PgError::Migrate);
        (wrapper.into_inner(), applied)
    })
    .await
    .map_err(|e| PgError::Migrate(e.into()))
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
