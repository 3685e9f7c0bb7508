//! Worker names: who holds a task. Free text (e.g. `host@3`), but never empty.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest worker name accepted, in bytes.
pub const MAX_WORKER_LEN: usize = 255;

/// A non-empty, trimmed worker name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerName(String);

impl WorkerName {
    /// Trims and checks a worker name; empty → `missing worker`.
    pub fn parse(raw: &str) -> Result<Self> {
        let w = raw.trim();
        if w.is_empty() {
            return Err(Error::MissingWorker);
        }
        if w.len() > MAX_WORKER_LEN {
            return Err(Error::InvalidField {
                field: "worker",
                reason: format!("longer than {MAX_WORKER_LEN} bytes"),
            });
        }
        Ok(Self(w.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names_are_trimmed_and_required() {
        assert_eq!(WorkerName::parse(" host@1 ").unwrap().as_str(), "host@1");
        assert_eq!(WorkerName::parse("  ").unwrap_err(), Error::MissingWorker);
        assert!(WorkerName::parse(&"x".repeat(256)).is_err());
    }
}
