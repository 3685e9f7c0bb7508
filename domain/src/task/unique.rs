//! Priorities and unique keys: what decides which waiting task runs first, and which create
//! answers an existing task instead of making a second one.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The lowest priority.
pub const MIN_PRIORITY: i16 = -100;
/// The highest priority.
pub const MAX_PRIORITY: i16 = 100;

/// Checks a priority: an integer from −100 to 100; higher runs first.
pub fn priority(field: &'static str, p: i64) -> Result<i16> {
    if (i64::from(MIN_PRIORITY)..=i64::from(MAX_PRIORITY)).contains(&p) {
        Ok(p as i16)
    } else {
        Err(Error::InvalidField {
            field,
            reason: format!("must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {p}"),
        })
    }
}

/// The longest unique key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A task's unique key: 1 to 255 bytes, no control characters, kept as given (not trimmed:
/// keys are the producer's own identifiers). While a task with the key is waiting or
/// retained, creating another with it answers that task instead.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UniqueKey(String);

impl UniqueKey {
    /// Checks a key.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidField {
            field: "unique_key",
            reason,
        };
        if raw.is_empty() {
            return Err(bad("must not be empty".into()));
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(bad(format!("longer than {MAX_KEY_LEN} bytes")));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(bad(format!("control character {c:?} is not allowed")));
        }
        Ok(Self(raw.to_string()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UniqueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UniqueKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What a create answered: a task it made, or the task that already held the unique key.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T = super::Task> {
    /// A new task.
    New(T),
    /// The waiting or retained task that holds the key; nothing was created.
    Existing(T),
}

impl<T> Created<T> {
    /// The task, new or existing.
    pub fn task(&self) -> &T {
        match self {
            Created::New(t) | Created::Existing(t) => t,
        }
    }

    /// The task, new or existing.
    pub fn into_task(self) -> T {
        match self {
            Created::New(t) | Created::Existing(t) => t,
        }
    }

    /// Whether a task was made.
    pub fn is_new(&self) -> bool {
        matches!(self, Created::New(_))
    }

    /// The same answer about another form of the task (e.g. its wire view).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Created::New(t) => Created::New(f(t)),
            Created::Existing(t) => Created::Existing(f(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_run_from_minus_100_to_100() {
        assert_eq!(priority("priority", -100).unwrap(), -100);
        assert_eq!(priority("priority", 100).unwrap(), 100);
        assert_eq!(
            priority("priority", 101).unwrap_err().to_string(),
            "invalid priority: must be between -100 and 100, got 101"
        );
    }

    #[test]
    fn keys_are_1_to_255_bytes_without_control_characters() {
        assert_eq!(UniqueKey::parse(" k ").unwrap().as_str(), " k ");
        assert!(UniqueKey::parse("").is_err());
        assert!(UniqueKey::parse(&"k".repeat(255)).is_ok());
        assert!(UniqueKey::parse(&"k".repeat(256)).is_err());
        assert!(UniqueKey::parse("a\u{0}b").is_err());
        assert!(UniqueKey::parse("a\nb").is_err());
    }
}
