//! The task as the wire shows it, for clients that read tasks back.
//!
//! [`Task`](super::Task) serialises to the wire shape but cannot be read back from it: the
//! wire carries the derived `status`, not the stored lifecycle state, and not the attempts a
//! task started with. A client that read the wire into a `Task` would invent both. This view
//! holds exactly what the wire holds; a test keeps its shape equal to `Task`'s.

use crate::name::{Namespace, QueueName};
use crate::status::Status;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A task as sent on the wire (`GET P/task/{id}` and every other answer with a task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Identifier.
    pub id: i64,
    /// The queue it belongs to.
    pub queue: QueueName,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// What the worker is asked to do; any JSON value, `null` included.
    #[serde(default)]
    pub payload: Value,
    /// The last attempt's result or error payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Who retained it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Not to be retained before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_at: Option<Timestamp>,
    /// When the current (or last) attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it ended for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// When it expires if not finished.
    pub dies_at: Timestamp,
    /// When the current attempt's lease runs out unless heartbeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
    /// Attempts left.
    pub retries: u32,
    /// The status when it was read.
    pub status: Status,
    /// −100 to 100; higher runs first.
    #[serde(default)]
    pub priority: i16,
    /// The unique key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// When an operator asked the worker holding it to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<Timestamp>,
}

impl From<&super::Task> for TaskView {
    fn from(t: &super::Task) -> Self {
        Self {
            id: t.id,
            queue: t.queue.clone(),
            namespace: t.namespace.clone(),
            payload: t.payload.clone(),
            result: t.result().cloned(),
            worker: t.worker().map(str::to_string),
            created_at: t.created_at,
            delayed_at: t.delayed_at(),
            started_at: t.started_at(),
            finished_at: t.finished_at(),
            dies_at: t.dies_at(),
            lease_expires_at: t.lease_expires_at(),
            retries: t.retries(),
            status: t.status(),
            priority: t.priority(),
            unique_key: t.unique_key().map(|k| k.as_str().to_string()),
            cancel_requested_at: t.cancel_requested_at(),
        }
    }
}
