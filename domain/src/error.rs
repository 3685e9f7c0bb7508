//! The one error type of the rulebook: every way an input or a transition can be refused.
//!
//! Messages are shown to users as they are (HTTP `reason`, CLI `Error: …`), so each names the
//! field or the rule that was broken.

/// Shorthand for results of domain functions.
pub type Result<T> = std::result::Result<T, Error>;

/// A refused input or transition. Never an I/O failure: the domain does no I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A name was empty after trimming (`missing queue name`).
    #[error("missing {0} name")]
    MissingName(&'static str),
    /// A name did not match `^[a-z][a-z0-9_-]{0,63}$` after normalisation.
    #[error("invalid {kind} name: {value:?}")]
    InvalidName {
        /// `queue`, `ticker` or `namespace`.
        kind: &'static str,
        /// What the caller sent, before normalisation.
        value: String,
    },
    /// The system namespace was requested by an application.
    #[error("namespace {0:?} is reserved for the system")]
    ReservedNamespace(String),
    /// A field was outside its allowed range.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name as it appears on the wire.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A duration string could not be parsed.
    #[error(
        "invalid duration {0:?}: expected integer nanoseconds or a duration such as \"90s\" or \"1h30m\""
    )]
    InvalidDuration(String),
    /// A status name that is not one of the seven.
    #[error(
        "invalid status {0:?}: expected one of new, retained, retry, released, failed, expired, cancelled"
    )]
    InvalidStatus(String),
    /// An event kind that is not one of the stream's.
    #[error(
        "invalid event {0:?}: expected one of created, retained, released, failed, retry, expired, cancelled, rescued, deleted, paused, resumed"
    )]
    InvalidEvent(String),
    /// A JSON value holds U+0000, which PostgreSQL cannot store (`<field>` is the body field).
    #[error("{0} contains \\u0000, which cannot be stored")]
    ContainsNul(&'static str),
    /// A JSON value PostgreSQL cannot store or read back exactly (a number out of range).
    #[error("invalid {field}: {reason}")]
    Unstorable {
        /// The body field holding it.
        field: &'static str,
        /// What cannot be stored.
        reason: String,
    },
    /// A worker name that is too long or holds control characters.
    #[error("invalid worker name: {0}")]
    InvalidWorker(String),
    /// A task was created without a payload.
    #[error("missing payload")]
    MissingPayload,
    /// A task was delayed to a time that has already passed.
    #[error("delayed_at is in the past")]
    DelayedInPast,
    /// Retaining, heartbeating or releasing needs a worker name.
    #[error("missing worker")]
    MissingWorker,
    /// A patch carried no field to change.
    #[error("no patch values")]
    NoPatchValues,
    /// A release or heartbeat of a task that no worker holds.
    #[error("task is not retained")]
    NotRetained,
    /// A release or heartbeat from a worker that no longer holds the task (fencing).
    #[error("task is not retained by worker {0:?}")]
    NotRetainedBy(String),
    /// A retain of a task that is not available (taken, delayed, expired or finished).
    #[error("task is not available")]
    NotAvailable,
    /// A lease rescue of a task whose lease has not passed.
    #[error("task lease has not expired")]
    LeaseNotExpired,
    /// A cancel, of a task that has already ended.
    #[error("task has ended")]
    TaskEnded,
    /// A heartbeat (or other continuation) of a task an operator asked to stop.
    #[error("task was cancelled")]
    Cancelled,
    /// A retry of a task that has not ended (or ended well: released).
    #[error("task is not ended")]
    NotEnded,
    /// A retry of a task that ended well.
    #[error("task was released: only failed, expired or cancelled tasks are retried")]
    NotRetryable,
    /// A delete of a task that a worker holds.
    #[error("task is retained: cancel it first")]
    StillRetained,
    /// A stored row that no sequence of transitions can produce.
    #[error("invalid stored record: {0}")]
    InvalidRecord(String),
    /// A ticker claim before its maturity.
    #[error("ticker has not matured")]
    NotMatured,
}
