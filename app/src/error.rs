//! The application's errors: what a caller did wrong, or that storage failed.
//!
//! Four kinds are enough for every interface to answer correctly: the HTTP adapter maps them
//! to 404, 409, 400 and 500/503 in one place, the CLI to a message and an exit code.

use pgqueue_domain::Error as DomainError;
use pgqueue_ports::{Failure, StoreError};

/// Shorthand for application results.
pub type Result<T> = std::result::Result<T, Error>;

/// Why an application call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The named queue, task or ticker does not exist in this namespace.
    #[error("{0}")]
    NotFound(String),
    /// The call clashes with the current state: already exists, task not retained (by you).
    #[error("{0}")]
    Conflict(String),
    /// The task was asked to stop: the answer to the heartbeat of a cancelled task (so a
    /// worker can tell it apart from losing its task).
    #[error("task was cancelled")]
    Cancelled,
    /// The input breaks a rule: bad name, out-of-range field, missing payload, …
    #[error(transparent)]
    Invalid(DomainError),
    /// Storage failed; the call may be retried. The driver's error is its source.
    #[error("{0}")]
    Storage(#[source] Failure),
}

impl From<DomainError> for Error {
    /// Refused transitions are conflicts with the task's current state; everything else the
    /// domain refuses is invalid input.
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Cancelled => Error::Cancelled,
            DomainError::NotRetained
            | DomainError::NotRetainedBy(_)
            | DomainError::NotAvailable
            | DomainError::LeaseNotExpired
            | DomainError::NotMatured
            | DomainError::TaskEnded
            | DomainError::NotEnded
            | DomainError::NotRetryable
            | DomainError::StillRetained => Error::Conflict(e.to_string()),
            other => Error::Invalid(other),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::Rule(d) => d.into(),
            StoreError::Unavailable(f) => Error::Storage(f.context("storage failure: ")),
        }
    }
}

impl Error {
    /// An invalid-input error with a free-form message naming the problem.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid(DomainError::InvalidField {
            field,
            reason: reason.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_transitions_are_conflicts_and_bad_input_is_invalid() {
        assert_eq!(
            Error::from(DomainError::NotRetained),
            Error::Conflict("task is not retained".into())
        );
        assert!(matches!(
            Error::from(DomainError::MissingPayload),
            Error::Invalid(_)
        ));
        assert_eq!(
            Error::from(StoreError::Rule(DomainError::NotRetainedBy("w".into()))),
            Error::Conflict("task is not retained by worker \"w\"".into())
        );
        assert_eq!(
            Error::from(StoreError::NotFound("x".into())),
            Error::NotFound("x".into())
        );
        assert!(matches!(
            Error::from(StoreError::Unavailable("down".into())),
            Error::Storage(_)
        ));
    }
}
