//! How storage reports failure: in the queue's own words, never in the driver's.
//!
//! Adapters translate their errors at their seam (a unique violation becomes
//! [`StoreError::Conflict`], a refused transition [`StoreError::Rule`]) so nothing
//! diesel-, bb8- or driver-specific leaks into the core; a real failure keeps the driver's
//! error as its [`source`](std::error::Error::source), for logs that need the whole chain.

use pgqueue_domain::Error as DomainError;
use std::fmt;
use std::sync::Arc;

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
    Unavailable(#[source] Failure),
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

    /// A failure with `message` caused by `source`.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable(Failure::caused_by(message, source))
    }
}

/// What failed, in words, and the error beneath it when there is one. Cheap to clone (the
/// cause is shared); compared by message, since causes are not comparable.
#[derive(Clone)]
pub struct Failure {
    message: String,
    cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            cause: None,
        }
    }

    /// A failure with `message` caused by `source`.
    pub fn caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            cause: Some(Arc::new(source)),
        }
    }

    /// The same failure, its message prefixed (the cause is kept).
    pub fn context(&self, prefix: &str) -> Self {
        Self {
            message: format!("{prefix}{}", self.message),
            cause: self.cause.clone(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::ops::Deref for Failure {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Failure");
        d.field("message", &self.message);
        if let Some(c) = &self.cause {
            d.field("cause", c);
        }
        d.finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn failures_keep_their_cause() {
        let io = std::io::Error::other("connection reset");
        let e = StoreError::unavailable("cannot reach the database", io);
        assert_eq!(e.to_string(), "storage failure: cannot reach the database");
        let failure = e.source().expect("the failure");
        assert_eq!(
            failure.source().expect("the cause").to_string(),
            "connection reset"
        );
        assert_eq!(
            StoreError::Unavailable("x".into()),
            StoreError::Unavailable(Failure::caused_by("x", std::io::Error::other("y")))
        );
    }
}
