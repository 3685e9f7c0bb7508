//! What a user gives to create a task, and the validated form the store receives.

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
            delayed_at: None,
        }
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
        Ok(NewTask {
            payload,
            delayed_at,
        })
    }
}

/// A validated task to create: a storable payload and a delay within RFC 3339's years. Only
/// [`TaskMeta::validate`] makes one, so a store never receives what it could not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    payload: Value,
    delayed_at: Option<Timestamp>,
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
    /// stored once, so already known to be storable.
    pub fn from_stored(payload: Value) -> Self {
        Self {
            payload,
            delayed_at: None,
        }
    }
}
