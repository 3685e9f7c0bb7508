//! Queues: named buckets of tasks with their retry policy.

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::limits::{Limits, MAX_RUNNING, Rate};
use crate::name::{Namespace, QueueName};
use serde::{Deserialize, Serialize};

/// How long a task may live by default: 1 hour.
pub const DEFAULT_TTL: Duration = Duration::from_hours(1);
/// Maximum number of attempts by default.
pub const DEFAULT_RETRIES: u32 = 3;
/// Base of the exponential backoff by default: 2 minutes.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_mins(2);
/// How long one attempt may hold a task without a heartbeat by default: 5 minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_mins(5);
/// The most attempts a queue may allow.
pub const MAX_RETRIES: u32 = 1_000;

/// A queue and its retry policy, as stored and as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// Its name, unique within the namespace.
    #[serde(rename = "queue")]
    pub name: QueueName,
    /// How long a task may live from its creation (or its delay); also how long a finished
    /// task is kept for inspection.
    pub ttl: Duration,
    /// Maximum number of attempts of each task created from now on.
    pub retries: u32,
    /// Base delay of the backoff: the k-th failure waits `retry_delay × k²`.
    pub retry_delay: Duration,
    /// How long one attempt may hold a task without a heartbeat before it is rescued.
    pub lease: Duration,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// Since when no task of it is retained (absent: not paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<crate::time::Timestamp>,
    /// At most this many of its tasks retained at once, across every process (absent: no
    /// limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u32>,
    /// At most this many retains per second, shared by every process (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

impl Queue {
    /// A queue with the default policy.
    pub fn new(namespace: Namespace, name: QueueName) -> Self {
        Self {
            name,
            ttl: DEFAULT_TTL,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY,
            lease: DEFAULT_LEASE,
            namespace,
            paused_at: None,
            max_running: None,
            rate: None,
        }
    }

    /// Its flow-control settings.
    pub fn limits(&self) -> Limits {
        Limits {
            max_running: self.max_running,
            rate: self.rate,
        }
    }

    /// Pauses it: no task of it is retained until it is resumed. Pausing a paused queue
    /// keeps the time it was first paused.
    pub fn pause(&mut self, now: crate::time::Timestamp) {
        self.paused_at.get_or_insert(crate::time::truncate(now));
    }

    /// Resumes it.
    pub fn resume(&mut self) {
        self.paused_at = None;
    }

    /// A new queue: the defaults, then the patch's settings (a name in the patch is ignored:
    /// `name` is the queue's name). What create and register store for a missing queue.
    pub fn from_patch(namespace: Namespace, name: QueueName, patch: &QueuePatch) -> Self {
        let mut q = Self::new(namespace, name);
        q.apply_settings(patch);
        q
    }

    /// Applies the patch's settings but never renames (register and upserts).
    pub fn apply_settings(&mut self, patch: &QueuePatch) {
        let name = self.name.clone();
        self.apply(patch);
        self.name = name;
    }

    /// Applies the fields a patch gives, including a rename.
    pub fn apply(&mut self, patch: &QueuePatch) {
        if let Some(name) = &patch.name {
            self.name = name.clone();
        }
        if let Some(ttl) = patch.ttl {
            self.ttl = ttl;
        }
        if let Some(retries) = patch.retries {
            self.retries = retries;
        }
        if let Some(delay) = patch.retry_delay {
            self.retry_delay = delay;
        }
        if let Some(lease) = patch.lease {
            self.lease = lease;
        }
        if let Some(max) = patch.max_running {
            self.max_running = max;
        }
        if let Some(rate) = patch.rate {
            self.rate = rate;
        }
    }
}

/// A queue as a user describes it: every field optional and not yet validated. This is the
/// input of `register_queue`, `create_queue` and `update_queue`, and the HTTP body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMeta {
    /// Name (required to create; renames on update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Task lifetime, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Maximum attempts, 0 to 1,000.
    #[serde(
        default,
        deserialize_with = "crate::json::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<i64>,
    /// Backoff base, ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Duration>,
    /// Lease per attempt, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Duration>,
    /// Accepted for wire compatibility (the Go system echoed it); the namespace comes from
    /// the caller's binding, never from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Accepted so that a queue read back can be sent again; ignored (pause and resume have
    /// their own routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<crate::time::Timestamp>,
    /// Most tasks retained at once, 1 to 1,000,000; `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "nullable_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_running: Option<Option<i64>>,
    /// Retains per second and burst; `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate: Option<Option<Rate>>,
}

/// A field where `null` means something (remove) and absence means another (keep).
fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn nullable_integer<'de, D>(d: D) -> std::result::Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    crate::json::optional_integer(d).map(Some)
}

/// A validated set of changes to a queue. Only [`QueueMeta::validate`] makes one, so every
/// value in it is within the domain's ranges whichever store receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePatch {
    name: Option<QueueName>,
    ttl: Option<Duration>,
    retries: Option<u32>,
    retry_delay: Option<Duration>,
    lease: Option<Duration>,
    max_running: Option<Option<u32>>,
    rate: Option<Option<Rate>>,
}

impl QueuePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.ttl.is_none()
            && self.retries.is_none()
            && self.retry_delay.is_none()
            && self.lease.is_none()
            && self.max_running.is_none()
            && self.rate.is_none()
    }

    /// The new name, if it renames.
    pub fn name(&self) -> Option<&QueueName> {
        self.name.as_ref()
    }
    /// The new ttl (≥ 100 ms).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
    /// The new maximum attempts (0–1,000).
    pub fn retries(&self) -> Option<u32> {
        self.retries
    }
    /// The new backoff base (≥ 0).
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_delay
    }
    /// The new lease (≥ 100 ms).
    pub fn lease(&self) -> Option<Duration> {
        self.lease
    }
    /// The new `max_running`: `Some(None)` removes the limit.
    pub fn max_running(&self) -> Option<Option<u32>> {
        self.max_running
    }
    /// The new rate: `Some(None)` removes the limit.
    pub fn rate(&self) -> Option<Option<Rate>> {
        self.rate
    }
}

impl QueueMeta {
    /// Validates every given field against the domain's ranges.
    pub fn validate(&self) -> Result<QueuePatch> {
        let retries = match self.retries {
            None => None,
            Some(r) if (0..=MAX_RETRIES as i64).contains(&r) => Some(r as u32),
            Some(r) => {
                return Err(Error::InvalidField {
                    field: "retries",
                    reason: format!("must be between 0 and {MAX_RETRIES}, got {r}"),
                });
            }
        };
        let retry_delay = match self.retry_delay {
            Some(d) if d.as_nanos() < 0 => {
                return Err(Error::InvalidField {
                    field: "retry_delay",
                    reason: format!("must not be negative, got {d}"),
                });
            }
            other => other,
        };
        let max_running = match self.max_running {
            Some(Some(n)) if !(1..=i64::from(MAX_RUNNING)).contains(&n) => {
                return Err(Error::InvalidField {
                    field: "max_running",
                    reason: format!("must be between 1 and {MAX_RUNNING}, got {n}"),
                });
            }
            other => other.map(|n| n.map(|n| n as u32)),
        };
        Ok(QueuePatch {
            max_running,
            rate: self.rate,
            name: self.queue.as_deref().map(QueueName::parse).transpose()?,
            ttl: self.ttl.map(|d| d.check_period("ttl")).transpose()?,
            retries,
            retry_delay,
            lease: self.lease.map(|d| d.check_period("lease")).transpose()?,
        })
    }

    /// Validates a queue to create: the name is required.
    pub fn validate_new(&self) -> Result<(QueueName, QueuePatch)> {
        let patch = self.validate()?;
        let name = patch.name.clone().ok_or(Error::MissingName("queue"))?;
        Ok((name, patch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let q = Queue::new(Namespace::default(), QueueName::parse("emails").unwrap());
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"queue":"emails","ttl":3600000000000i64,"retries":3,
                "retry_delay":120000000000i64,"lease":300000000000i64,"namespace":"default"})
        );
    }

    #[test]
    fn ranges_are_checked_and_name_the_field() {
        let err = |m: QueueMeta| m.validate().unwrap_err().to_string();
        assert!(
            err(QueueMeta {
                retries: Some(-1),
                ..Default::default()
            })
            .contains("retries")
        );
        assert!(
            err(QueueMeta {
                retries: Some(1001),
                ..Default::default()
            })
            .contains("retries")
        );
        assert!(
            err(QueueMeta {
                ttl: Some(Duration::ZERO),
                ..Default::default()
            })
            .contains("ttl")
        );
        assert!(
            err(QueueMeta {
                lease: Some(Duration::from_millis(99)),
                ..Default::default()
            })
            .contains("lease")
        );
        assert!(
            err(QueueMeta {
                retry_delay: Some(Duration::from_secs(-1)),
                ..Default::default()
            })
            .contains("retry_delay")
        );
        let ok = QueueMeta {
            retries: Some(0),
            retry_delay: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(ok.validate().unwrap().retries, Some(0));
        assert_eq!(
            QueueMeta {
                retries: Some(1000),
                ..Default::default()
            }
            .validate()
            .unwrap()
            .retries,
            Some(1000)
        );
    }

    #[test]
    fn a_new_queue_needs_a_name_and_patches_apply_only_given_fields() {
        assert_eq!(
            QueueMeta::default().validate_new().unwrap_err(),
            Error::MissingName("queue")
        );
        let (name, patch) = QueueMeta {
            queue: Some(" Emails ".into()),
            retries: Some(5),
            ..Default::default()
        }
        .validate_new()
        .unwrap();
        let mut q = Queue::new(Namespace::default(), name);
        q.apply(&patch);
        assert_eq!(
            (q.name.as_str(), q.retries, q.ttl),
            ("emails", 5, DEFAULT_TTL)
        );
        assert!(QueueMeta::default().validate().unwrap().is_empty());
    }

    #[test]
    fn from_patch_applies_settings_but_never_the_patch_name() {
        let patch = QueueMeta {
            queue: Some("other".into()),
            retries: Some(7),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let mut q = Queue::from_patch(
            Namespace::default(),
            QueueName::parse("jobs").unwrap(),
            &patch,
        );
        assert_eq!(
            (q.name.as_str(), q.retries, q.ttl),
            ("jobs", 7, DEFAULT_TTL)
        );
        q.apply_settings(
            &QueueMeta {
                queue: Some("x".into()),
                ttl: Some(Duration::from_secs(5)),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        );
        assert_eq!((q.name.as_str(), q.ttl), ("jobs", Duration::from_secs(5)));
    }

    #[test]
    fn durations_are_read_as_strings_too() {
        let meta: QueueMeta =
            serde_json::from_str(r#"{"queue":"q","ttl":"90s","lease":1000}"#).unwrap();
        assert_eq!(meta.ttl, Some(Duration::from_secs(90)));
        assert_eq!(meta.lease, Some(Duration::from_nanos(1000)));
        assert!(serde_json::from_str::<QueueMeta>(r#"{"queue":"q","bogus":1}"#).is_err());
    }

    #[test]
    fn limits_are_set_by_a_value_kept_when_absent_and_removed_by_null() {
        let patch = |json: &str| {
            serde_json::from_str::<QueueMeta>(json)
                .unwrap()
                .validate()
                .unwrap()
        };
        let mut q = Queue::new(Namespace::default(), QueueName::parse("api").unwrap());
        q.apply(&patch(
            r#"{"max_running":10,"rate":{"per_second":100,"burst":20}}"#,
        ));
        assert_eq!(q.max_running, Some(10));
        assert_eq!(q.rate, Some(Rate::new(100.0, 20).unwrap()));
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["max_running"], 10);
        assert_eq!(
            json["rate"],
            serde_json::json!({"per_second":100.0,"burst":20})
        );
        q.apply(&patch(r#"{"retries":1}"#));
        assert_eq!((q.max_running, q.rate.is_some()), (Some(10), true));
        q.apply(&patch(r#"{"max_running":null,"rate":null}"#));
        assert_eq!((q.max_running, q.rate), (None, None));
        assert!(!q.limits().any());
        for bad in [
            r#"{"max_running":0}"#,
            r#"{"max_running":1000001}"#,
            r#"{"max_running":-3}"#,
        ] {
            let err = serde_json::from_str::<QueueMeta>(bad)
                .unwrap()
                .validate()
                .unwrap_err();
            assert!(
                err.to_string()
                    .contains("invalid max_running: must be between 1 and 1000000"),
                "{err}"
            );
        }
        assert!(serde_json::from_str::<QueueMeta>(r#"{"max_running":1.5}"#).is_err());
    }
}
