//! Worker names: who holds a task. Free text (e.g. `host@3`), but never empty, never longer
//! than 255 bytes, and never holding control characters: names are written to logs, shown in
//! dashboards and echoed in headers, where a CR/LF or NUL would inject or break lines (and
//! PostgreSQL refuses NUL in text).

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The longest worker name accepted, in bytes.
pub const MAX_WORKER_LEN: usize = 255;

/// A non-empty, trimmed worker name of at most 255 bytes without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkerName(String);

impl WorkerName {
    /// Trims and checks a worker name; empty → `missing worker`, too long or with a control
    /// character → `invalid worker name`.
    pub fn parse(raw: &str) -> Result<Self> {
        let w = raw.trim();
        if w.is_empty() {
            return Err(Error::MissingWorker);
        }
        if w.len() > MAX_WORKER_LEN {
            return Err(Error::InvalidWorker(format!(
                "longer than {MAX_WORKER_LEN} bytes"
            )));
        }
        if let Some(c) = w.chars().find(|c| c.is_control()) {
            return Err(Error::InvalidWorker(format!(
                "control character {:?} is not allowed",
                c
            )));
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

impl<'de> Deserialize<'de> for WorkerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names_are_trimmed_and_required() {
        assert_eq!(WorkerName::parse(" host@1 ").unwrap().as_str(), "host@1");
        assert_eq!(WorkerName::parse("  ").unwrap_err(), Error::MissingWorker);
        assert!(WorkerName::parse(&"x".repeat(255)).is_ok());
        assert!(WorkerName::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in [
            "a\0b",
            "w\r\nX-Injected: yes",
            "tab\there",
            "bell\u{7}",
            "c1\u{85}x",
        ] {
            let err = WorkerName::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid worker name"),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(WorkerName::parse("höst@1 ü").unwrap().as_str(), "höst@1 ü");
    }

    #[test]
    fn names_deserialize_through_parse() {
        assert!(serde_json::from_str::<WorkerName>(r#""a\u0000b""#).is_err());
        let w: WorkerName = serde_json::from_str(r#"" w ""#).unwrap();
        assert_eq!(w.as_str(), "w");
    }
}
