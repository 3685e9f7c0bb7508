//! How a worker ends an attempt: success with an optional result, or failure with an error
//! payload, optionally fenced to the worker that holds the task.

use crate::error::Result;
use crate::json::check_storable;
use crate::worker::WorkerName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a release reports success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The work was done.
    Success,
    /// The attempt failed; its error payload is stored in `result`.
    Failure,
}

/// How a worker releases a task. Built only through its constructors, which refuse a result
/// the store could not keep, so a release never fails in the store for its payload (and
/// never fails a statement it shares with other callers' releases).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    kind: OutcomeKind,
    result: Option<Value>,
    worker: Option<WorkerName>,
}

impl Outcome {
    /// A success with an optional result.
    pub fn success(result: Option<Value>) -> Result<Self> {
        if let Some(r) = &result {
            check_storable("result", r)?;
        }
        Ok(Self {
            kind: OutcomeKind::Success,
            result,
            worker: None,
        })
    }

    /// A success without a result: always valid.
    pub fn done() -> Self {
        Self {
            kind: OutcomeKind::Success,
            result: None,
            worker: None,
        }
    }

    /// A failure with an error payload (stored in `result`, exactly as given).
    pub fn failure(error: Value) -> Result<Self> {
        check_storable("result", &error)?;
        Ok(Self {
            kind: OutcomeKind::Failure,
            result: Some(error),
            worker: None,
        })
    }

    /// A failure whose error payload is the text `message` as a JSON string: always valid (a
    /// NUL in the text, which the store could not keep, becomes U+FFFD). What runtimes send
    /// for an error or a panic.
    pub fn failure_text(message: &str) -> Self {
        Self {
            kind: OutcomeKind::Failure,
            result: Some(Value::String(message.replace('\0', "\u{FFFD}"))),
            worker: None,
        }
    }

    /// The same outcome, fenced: only `worker` may release.
    pub fn by(mut self, worker: WorkerName) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Success or failure.
    pub fn kind(&self) -> OutcomeKind {
        self.kind
    }

    /// Whether the attempt failed.
    pub fn is_failure(&self) -> bool {
        self.kind == OutcomeKind::Failure
    }

    /// The result (success) or the error payload (failure).
    pub fn result(&self) -> Option<&Value> {
        self.result.as_ref()
    }

    /// The worker the release is fenced to, if any.
    pub fn worker(&self) -> Option<&WorkerName> {
        self.worker.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_the_store_cannot_keep_are_refused() {
        let err = Outcome::success(Some(json!({"a": "x\u{0}"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "result contains \\u0000, which cannot be stored"
        );
        assert!(Outcome::failure(json!(["\u{0}"])).is_err());
        let ok = Outcome::failure(json!("boom")).unwrap();
        assert!(ok.is_failure());
        assert_eq!(ok.result(), Some(&json!("boom")));
        assert_eq!(Outcome::done().result(), None);
        let text = Outcome::failure_text("a\0b");
        assert_eq!(text.result(), Some(&json!("a\u{FFFD}b")));
    }
}
