//! How storage reports failure: in the queue's own words, never in the driver's.
//!
//! Adapters translate their errors at their seam (a unique violation becomes
//! [`StoreError::Conflict`], a refused transition [`StoreError::Rule`]) so nothing
//! diesel-, bb8- or driver-specific leaks into the core.

use pgqueue_domain::Error as DomainError;

/// Shorthand for storage results.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage operation that did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist in the namespace (`queue "emails" not found`).
    #[error("{0}")]
    NotFound(String),
    /// The operation clashes with the current state (`queue already exists`).
    #[error("{0}")]
    Conflict(String),
    /// A domain rule refused the operation (as the domain states it).
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// The storage itself failed: connection lost, timeout, unexpected database error.
    #[error("storage failure: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// `<kind> "<name>" not found`.
    pub fn not_found(kind: &str, name: impl std::fmt::Display) -> Self {
        StoreError::NotFound(format!("{kind} \"{name}\" not found"))
    }

    /// `task <id> not found`.
    pub fn task_not_found(id: i64) -> Self {
        StoreError::NotFound(format!("task {id} not found"))
    }
}
