//! The adapter's one error type, and its translation into the port's [`StoreError`].
//!
//! Start-up failures (cannot connect, cannot migrate) are [`PgError`]s the caller shows as they
//! are; everything a running store reports goes out as a [`StoreError`], so nothing
//! diesel- or bb8-specific leaks past this seam.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use pgqueue_ports::StoreError;

/// A cause from another crate (the migration runner, the pool), kept for its chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in the PostgreSQL adapter.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database URL could not be parsed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The schema option is not a plain identifier.
    #[error("invalid schema name {0:?}: expected letters, digits and underscores")]
    InvalidSchema(String),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// `host:port` as given in the URL.
        target: String,
        /// Why, as the driver says it (with its causes).
        reason: String,
        /// The driver's error, when there is one.
        #[source]
        cause: Option<Cause>,
    },
    /// Applying the embedded migrations failed.
    #[error("cannot migrate the pgqueue schema: {0}")]
    Migrate(#[source] Cause),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[source] QueryError),
    /// No pooled connection could be had (timeout or connection failure).
    #[error("connection pool: {0}")]
    Pool(#[source] Cause),
    /// A rule or lookup failure already stated in the port's words.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failed statement, as the driver reported it (kept opaque so no driver type is part of
/// this crate's API).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct QueryError(pub(crate) DieselError);

impl From<DieselError> for PgError {
    fn from(e: DieselError) -> Self {
        PgError::Query(QueryError(e))
    }
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Store(s) => s,
            PgError::Query(QueryError(q)) => from_diesel(q),
            other => StoreError::unavailable(other.to_string(), other),
        }
    }
}

/// Translates a driver error with no more specific context: constraint violations become
/// conflicts or rule errors, everything else an unavailable store.
pub(crate) fn from_diesel(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            StoreError::Conflict(info.message().to_string())
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
            StoreError::NotFound(info.message().to_string())
        }
        DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info) => {
            check_violation(info.constraint_name())
        }
        other => StoreError::unavailable(other.to_string(), other),
    }
}

/// The CHECK constraints of the schema and the domain field each guards. The domain refuses
/// these values before they reach a statement, so a violation means a caller bypassed it;
/// it is still reported in the domain's words, never in PostgreSQL's.
const CHECKS: &[(&str, &str)] = &[
    ("queues_ttl_check", "ttl"),
    ("queues_lease_check", "lease"),
    ("queues_retries_check", "retries"),
    ("queues_retry_delay_check", "retry_delay"),
    ("tickers_interval_check", "interval"),
    ("tasks_priority_check", "priority"),
    ("tickers_priority_check", "priority"),
];

fn check_violation(constraint: Option<&str>) -> StoreError {
    let field = constraint
        .and_then(|c| CHECKS.iter().find(|(name, _)| *name == c))
        .map_or("value", |(_, field)| *field);
    StoreError::Rule(pgqueue_domain::Error::InvalidField {
        field,
        reason: "is outside the range the domain allows".into(),
    })
}

/// Whether the statement broke a unique index.
pub(crate) fn is_unique_violation(e: &PgError) -> bool {
    matches!(
        e,
        PgError::Query(QueryError(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        )))
    )
}

/// A unique violation becomes `Conflict(message)`; anything else goes through [`from_diesel`].
pub(crate) fn conflict_on_unique(e: PgError, message: &str) -> PgError {
    if is_unique_violation(&e) {
        PgError::Store(StoreError::Conflict(message.to_string()))
    } else {
        e
    }
}

/// Whether the statement never reached the server because the connection was already closed,
/// so running it again on another connection cannot apply it twice.
pub(crate) fn never_sent(e: &PgError) -> bool {
    matches!(
        e,
        PgError::Query(QueryError(DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info)))
            if info.message() == "connection closed"
    )
}
