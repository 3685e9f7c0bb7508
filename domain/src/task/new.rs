//! What a user gives to create a task, and the validated form the store receives.

use super::unique::UniqueKey;
use crate::error::{Error, Result};
use crate::json::check_storable;
use crate::time::{self, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// What a user gives to create a task: the HTTP body or the Rust argument.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The payload; required, but an explicit JSON `null` is a payload. `None` means absent.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub payload: Option<Value>,
    /// Not to be retained before this; must not be in the past.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_at: Option<Timestamp>,
    /// −100 to 100, default 0; higher runs first.
    #[serde(
        default,
        deserialize_with = "crate::json::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<i64>,
    /// While a task with this key is waiting or retained, a create answers that task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
}

/// Maps a present JSON value, `null` included, to `Some` (serde maps `null` to `None`).
pub(crate) fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl TaskMeta {
    /// A task with this payload, not delayed.
    pub fn new(payload: Value) -> Self {
        Self {
            payload: Some(payload),
            ..Default::default()
        }
    }

    /// The same task with this priority (−100 to 100; higher runs first).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The same task with a unique key.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// The same task, not to be retained before `at`.
    pub fn delayed_until(mut self, at: Timestamp) -> Self {
        self.delayed_at = Some(at);
        self
    }

    /// Checks everything that does not depend on time or on the queue (a payload is present
    /// and storable, the delay is a writable instant) and moves the payload into the task to
    /// create: no copy of it on the enqueue path.
    pub fn validate(self) -> Result<NewTask> {
        let payload = self.payload.ok_or(Error::MissingPayload)?;
        check_storable("payload", &payload)?;
        let delayed_at = self
            .delayed_at
            .map(|d| time::check_in_range("delayed_at", d).map(time::truncate))
            .transpose()?;
        let priority = self
            .priority
            .map(|p| super::unique::priority("priority", p))
            .transpose()?
            .unwrap_or(0);
        let unique_key = self
            .unique_key
            .as_deref()
            .map(UniqueKey::parse)
            .transpose()?;
        Ok(NewTask {
            payload,
            delayed_at,
            priority,
            unique_key,
        })
    }
}

/// A validated task to create: a storable payload and a delay within RFC 3339's years. Only
/// [`TaskMeta::validate`] makes one, so a store never receives what it could not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    payload: Value,
    delayed_at: Option<Timestamp>,
    priority: i16,
    unique_key: Option<UniqueKey>,
}

impl NewTask {
    /// The payload.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// Not to be retained before this (microsecond resolution).
    pub fn delayed_at(&self) -> Option<Timestamp> {
        self.delayed_at
    }

    /// −100 to 100; higher runs first.
    pub fn priority(&self) -> i16 {
        self.priority
    }

    /// The unique key, if any.
    pub fn unique_key(&self) -> Option<&UniqueKey> {
        self.unique_key.as_ref()
    }

    /// Takes the payload out (the store keeps it; nothing else needs it afterwards).
    pub fn into_payload(self) -> Value {
        self.payload
    }

    /// Refuses a delay that has already passed at `now`. An edge rule: the caller checks it
    /// against the storage's clock before creating; a store accepts a past delay (it may
    /// have passed while the request travelled) and treats the task as due.
    pub fn check_delay(&self, now: Timestamp) -> Result<()> {
        match self.delayed_at {
            Some(d) if d < time::truncate(now) => Err(Error::DelayedInPast),
            _ => Ok(()),
        }
    }

    /// A task created by the system itself (a ticker's maturity) with a payload already
    /// stored once, so already known to be storable, and the ticker's priority.
    pub fn from_stored(payload: Value, priority: i16) -> Self {
        Self {
            payload,
            delayed_at: None,
            priority,
            unique_key: None,
        }
    }
}
