//! A typed async client of pgqueue's REST API (`docs/http-api.md`).
//!
//! It speaks the exact wire shapes by reusing the domain's types (`Queue`, `Ticker`, their
//! `*Meta` inputs, and [`TaskView`], the task as the wire shows it: its derived status, not
//! the server's stored state), so a field renamed on the server is a compile error here, not
//! a silent `null`. Every non-2xx answer becomes [`ClientError::Api`] carrying the status and
//! the envelope's `reason`; transport failures stay apart so callers can retry them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pgqueue_client::ClientError> {
//! use pgqueue_client::{Client, Release};
//! let client = Client::new("http://127.0.0.1:8080/api")?;
//! if let Some(task) = client.retain_task("host@1", &["emails"]).await? {
//!     client.release_task(task.id, Release::success(None).by("host@1")).await?;
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;
mod types;

pub use client::{Client, EventStream, http_builder, install_tls_provider};
pub use error::ClientError;
pub use types::{EventData, Listing, Release, ReleaseAnswer, ReleaseItem, SseEvent, TaskQuery};

pub use pgqueue_domain::{
    Created, Duration, Queue, QueueMeta, Status, TaskId, TaskMeta, TaskView, Ticker, TickerMeta,
};
