//! The client's own wire types: what the domain's types do not already describe.

use pgqueue_domain::{Outcome, Status, TaskId, Ticker};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One page of a list and the total before pagination (`{"count","body"}` on the wire).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// How many items match in all.
    pub count: u64,
    /// This page's items.
    pub items: Vec<T>,
}

/// The list envelope as it arrives; `body` is absent when empty.
#[derive(Deserialize)]
pub(crate) struct ListWire<T> {
    pub count: u64,
    #[serde(default = "Vec::new")]
    pub body: Vec<T>,
}

impl<T> From<ListWire<T>> for Listing<T> {
    fn from(w: ListWire<T>) -> Self {
        Self {
            count: w.count,
            items: w.body,
        }
    }
}

/// Which tasks `list_tasks` asks for; only what is set is sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    /// Only this queue's tasks.
    pub queue: Option<String>,
    /// Only tasks in this status.
    pub status: Option<Status>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// Rows to return (the server caps it at 100).
    pub limit: Option<u64>,
}

/// One release of a batch (`PATCH P/task`): the task and how to release it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseItem {
    /// The task.
    pub id: i64,
    /// How to release it.
    #[serde(flatten)]
    pub release: Release,
}

/// What the server said of one release of a batch, in the order given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReleaseAnswer {
    /// The task.
    pub id: i64,
    /// What `PATCH P/task/{id}` would have answered: 200, or 400, 404, 409.
    pub code: u16,
    /// The task after the release (code 200).
    #[serde(default)]
    pub task: Option<pgqueue_domain::TaskView>,
    /// Why it was refused (other codes).
    #[serde(default)]
    pub reason: Option<String>,
}

/// How to release a retained task: the `PATCH P/task/{id}` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Release {
    /// The result (success) or the error payload (failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Whether the attempt failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fail: bool,
    /// When set, the server refuses the release unless this worker holds the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl Release {
    /// The work was done, with an optional result.
    pub fn success(result: Option<Value>) -> Self {
        Self {
            result,
            ..Default::default()
        }
    }

    /// The attempt failed with this error payload.
    pub fn failure(error: Value) -> Self {
        Self {
            result: Some(error),
            fail: true,
            worker: None,
        }
    }

    /// The same release, fenced to `worker`.
    pub fn by(mut self, worker: impl Into<String>) -> Self {
        self.worker = Some(worker.into());
        self
    }
}

impl From<Outcome> for Release {
    fn from(o: Outcome) -> Self {
        Self {
            result: o.result().cloned(),
            fail: o.is_failure(),
            worker: o.worker().map(|w| w.as_str().to_string()),
        }
    }
}

/// One server-sent event: its name (`ticker`, `ping`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event name (`message` when the server gave none).
    pub event: String,
    /// The event's `id:` (empty when it has none: pings, tickers). Send the last one back as
    /// `last_event_id` when reconnecting to [`crate::Client::events`].
    pub id: String,
    /// The data lines joined with `\n`; empty for pings.
    pub data: String,
}

/// What a `task` or `queue` event of [`crate::Client::events`] says (`docs/events.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventData {
    /// The task (task events only).
    #[serde(default)]
    pub id: Option<TaskId>,
    /// The queue.
    pub queue: String,
    /// The namespace.
    pub namespace: String,
    /// The kind: `created`, `retained`, `released`, `failed`, `retry`, `expired`,
    /// `cancelled`, `rescued`, `deleted` (task events), `paused`, `resumed` (queue events).
    pub event: String,
    /// The task's status after the change (task events only).
    #[serde(default)]
    pub status: Option<String>,
    /// When it happened (RFC 3339).
    pub at: String,
}

impl SseEvent {
    /// The event id as a number, when the event has one.
    pub fn event_id(&self) -> Option<u64> {
        self.id.parse().ok()
    }

    /// What a `task` or `queue` event carries; `None` for other events.
    pub fn event_data(&self) -> Option<Result<EventData, serde_json::Error>> {
        matches!(self.event.as_str(), "task" | "queue").then(|| serde_json::from_str(&self.data))
    }

    /// The ticker a `ticker` event carries; `None` for other events.
    pub fn ticker(&self) -> Option<Result<Ticker, serde_json::Error>> {
        (self.event == "ticker").then(|| serde_json::from_str(&self.data))
    }
}

/// A `{"count":N}` answer (redrive, purge).
#[derive(Deserialize)]
pub(crate) struct CountWire {
    pub count: u64,
}

/// The error envelope as it arrives.
#[derive(Deserialize)]
pub(crate) struct ErrorWire {
    pub object: String,
    pub reason: String,
    #[serde(default)]
    pub detail: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn releases_send_only_what_is_set() {
        assert_eq!(
            serde_json::to_value(Release::success(None)).unwrap(),
            json!({})
        );
        assert_eq!(
            serde_json::to_value(Release::failure(json!("boom")).by("w")).unwrap(),
            json!({"result":"boom","fail":true,"worker":"w"})
        );
        let from: Release = Outcome::failure(json!(1)).unwrap().into();
        assert!(from.fail);
    }
}
