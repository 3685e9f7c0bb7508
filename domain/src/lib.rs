//! pgqueue's rulebook.
//!
//! Everything pgqueue decides about queues, tasks and tickers is stated here once, as pure
//! functions: no I/O, no async, no clock. Every time-dependent rule takes `now` as an argument,
//! so the in-memory adapter can execute these rules directly, the PostgreSQL adapter can be
//! tested against them, and simulations can drive time by hand.
//!
//! Architecture invariant: this crate depends on nothing of pgqueue's and on no I/O crate; it
//! cannot fail for I/O reasons.

pub mod auth;
pub mod duration;
pub mod error;
pub mod event;
pub mod json;
pub mod limits;
pub mod name;
pub mod page;
pub mod queue;
pub mod status;
pub mod task;
pub mod ticker;
pub mod time;
pub mod worker;

pub use duration::Duration;
pub use error::{Error, Result};
pub use event::{EventFilter, EventId, EventKind, Resume, TaskEvent};
pub use limits::{Admission, Bucket, Limit, Limits, Rate};
pub use name::{Namespace, QueueName, TickerName};
pub use page::Page;
pub use queue::{Queue, QueueMeta, QueuePatch};
pub use status::{State, Status, StatusCount};
pub use task::{
    Cancelled, Created, NewTask, Outcome, OutcomeKind, Task, TaskFilter, TaskId, TaskMeta,
    TaskRecord, TaskView, UniqueKey,
};
pub use ticker::{Cron, CronExpr, Schedule, Ticker, TickerMeta, TickerPatch, Zone};
pub use time::{MAX_TIMESTAMP, Timestamp};
pub use worker::WorkerName;
