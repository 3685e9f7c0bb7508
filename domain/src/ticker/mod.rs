//! Tickers: named periodic schedules, each maturity claimed exactly once.

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::json::check_storable;
use crate::name::{Namespace, QueueName, TickerName};
use crate::time::{self, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// How often a ticker fires by default: 1 minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_mins(1);

/// A ticker as stored and as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticker {
    /// Its name, unique within the namespace.
    #[serde(rename = "ticker")]
    pub name: TickerName,
    /// Delivered with every maturity (or used as the task payload).
    pub payload: Value,
    /// Time between maturities.
    pub interval: Duration,
    /// The tenant it belongs to.
    pub namespace: Namespace,
    /// When it last fired; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// When set, every maturity becomes a task on this queue instead of a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueName>,
    /// The priority of the tasks it creates (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i16>,
    /// Since when it does not fire (absent: not paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
}

impl Ticker {
    /// A ticker with the default payload (`{}`) and interval, never fired.
    pub fn new(namespace: Namespace, name: TickerName) -> Self {
        Self {
            name,
            payload: Value::Object(Default::default()),
            interval: DEFAULT_INTERVAL,
            namespace,
            timestamp: None,
            queue: None,
            priority: None,
            paused_at: None,
        }
    }

    /// Pauses it: it does not fire until resumed (idempotent).
    pub fn pause(&mut self, now: Timestamp) {
        self.paused_at.get_or_insert(time::truncate(now));
    }

    /// Resumes it: it fires once at the next poll if it matured meanwhile.
    pub fn resume(&mut self) {
        self.paused_at = None;
    }

    /// A new ticker: the defaults, then the patch's settings (a name in the patch is ignored).
    pub fn from_patch(namespace: Namespace, name: TickerName, patch: &TickerPatch) -> Self {
        let mut t = Self::new(namespace, name);
        t.apply_settings(patch);
        t
    }

    /// Applies the patch's settings but never renames (register and upserts).
    pub fn apply_settings(&mut self, patch: &TickerPatch) {
        let name = self.name.clone();
        self.apply(patch);
        self.name = name;
    }

    /// Applies the fields a patch gives, including a rename. The timestamp is kept, so
    /// re-registering a ticker does not make it fire again.
    pub fn apply(&mut self, patch: &TickerPatch) {
        if let Some(name) = &patch.name {
            self.name = name.clone();
        }
        if let Some(payload) = &patch.payload {
            self.payload = payload.clone();
        }
        if let Some(interval) = patch.interval {
            self.interval = interval;
        }
        if let Some(queue) = &patch.queue {
            self.queue = queue.clone();
        }
        if let Some(priority) = patch.priority {
            self.priority = priority;
        }
    }

    /// The priority of the tasks its maturities create.
    pub fn task_priority(&self) -> i16 {
        self.priority.unwrap_or(0)
    }

    /// When it next matures: `None` if it never fired (it is matured now).
    pub fn matures_at(&self) -> Option<Timestamp> {
        self.timestamp.map(|t| time::add(t, self.interval))
    }

    /// Whether it has matured at `now`: not paused, and never fired or
    /// `timestamp + interval ≤ now`.
    pub fn is_matured(&self, now: Timestamp) -> bool {
        self.paused_at.is_none() && self.matures_at().is_none_or(|m| m <= now)
    }

    /// Claims the current maturity: records `now` as the time it fired.
    pub fn claim(&mut self, now: Timestamp) -> Result<()> {
        if !self.is_matured(now) {
            return Err(Error::NotMatured);
        }
        self.timestamp = Some(time::truncate(now));
        Ok(())
    }
}

/// A ticker as a user describes it: every field optional and not yet validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickerMeta {
    /// Name (required to create; renames on update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticker: Option<String>,
    /// Payload; `{}` when a ticker is created without one (an explicit `null` is a payload).
    #[serde(
        default,
        deserialize_with = "crate::task::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub payload: Option<Value>,
    /// Time between maturities, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Alias of `interval` (the earlier system's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Duration>,
    /// Absent: unchanged; `null`: no queue; a name: maturities become tasks there.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue: Option<Option<String>>,
    /// Absent: unchanged; `null`: default (0); a number: the priority of the tasks it creates.
    #[serde(
        default,
        deserialize_with = "double_integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub priority: Option<Option<i64>>,
    /// Accepted for wire compatibility; the namespace comes from the caller's binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Accepted for wire compatibility (a ticker read back and sent again); ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// Accepted so that a ticker read back can be sent again; ignored (pause and resume
    /// have their own routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn double_option<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Tells an explicit `null` from an absent integer field.
fn double_integer<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<i64>>, D::Error> {
    crate::json::optional_integer(d).map(Some)
}

/// A validated set of changes to a ticker. Only [`TickerMeta::validate`] makes one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickerPatch {
    name: Option<TickerName>,
    payload: Option<Value>,
    interval: Option<Duration>,
    queue: Option<Option<QueueName>>,
    priority: Option<Option<i16>>,
}

impl TickerPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.payload.is_none()
            && self.interval.is_none()
            && self.queue.is_none()
            && self.priority.is_none()
    }

    /// The new name, if it renames.
    pub fn name(&self) -> Option<&TickerName> {
        self.name.as_ref()
    }
    /// The new payload (storable).
    pub fn payload(&self) -> Option<&Value> {
        self.payload.as_ref()
    }
    /// The new interval (≥ 100 ms).
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }
    /// The new target queue: `Some(None)` removes it.
    pub fn queue(&self) -> Option<Option<&QueueName>> {
        self.queue.as_ref().map(Option::as_ref)
    }
    /// The new priority of the tasks it creates: `Some(None)` resets it.
    pub fn priority(&self) -> Option<Option<i16>> {
        self.priority
    }
}

impl TickerMeta {
    /// Validates every given field.
    pub fn validate(&self) -> Result<TickerPatch> {
        // Both are checked when both are given (the interval wins): an out-of-range value
        // is refused wherever it is.
        let period = self.period.map(|p| p.check_period("period")).transpose()?;
        let interval = self
            .interval
            .map(|i| i.check_period("interval"))
            .transpose()?
            .or(period);
        let queue = match &self.queue {
            None => None,
            Some(None) => Some(None),
            Some(Some(q)) if q.trim().is_empty() => Some(None),
            Some(Some(q)) => Some(Some(QueueName::parse(q)?)),
        };
        if let Some(p) = &self.payload {
            check_storable("payload", p)?;
        }
        Ok(TickerPatch {
            name: self
                .ticker
                .as_deref()
                .map(TickerName::parse_user)
                .transpose()?,
            payload: self.payload.clone(),
            interval,
            queue,
            priority: self
                .priority
                .map(|p| p.map(|p| crate::task::priority("priority", p)).transpose())
                .transpose()?,
        })
    }

    /// Validates a ticker to create: the name is required.
    pub fn validate_new(&self) -> Result<(TickerName, TickerPatch)> {
        let patch = self.validate()?;
        let name = patch.name.clone().ok_or(Error::MissingName("ticker"))?;
        Ok((name, patch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use serde_json::json;

    fn t0() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn ticker() -> Ticker {
        Ticker::new(Namespace::default(), TickerName::parse("hourly").unwrap())
    }

    #[test]
    fn a_new_ticker_is_matured_and_a_claim_waits_one_interval() {
        let mut t = ticker();
        assert!(t.is_matured(t0()));
        t.claim(t0()).unwrap();
        assert_eq!(t.timestamp, Some(t0()));
        assert_eq!(
            t.claim(t0() + TimeDelta::seconds(59)),
            Err(Error::NotMatured)
        );
        assert!(t.is_matured(t0() + TimeDelta::seconds(60)));
        t.claim(t0() + TimeDelta::seconds(61)).unwrap();
        assert_eq!(t.matures_at(), Some(t0() + TimeDelta::seconds(121)));
    }

    #[test]
    fn defaults_and_wire_shape() {
        let v = serde_json::to_value(ticker()).unwrap();
        assert_eq!(
            v,
            json!({"ticker":"hourly","payload":{},"interval":60000000000i64,"namespace":"default"})
        );
    }

    #[test]
    fn period_is_an_alias_of_interval_and_must_be_positive() {
        let m: TickerMeta = serde_json::from_str(r#"{"ticker":"t","period":"5s"}"#).unwrap();
        assert_eq!(m.validate().unwrap().interval, Some(Duration::from_secs(5)));
        let m: TickerMeta = serde_json::from_str(r#"{"ticker":"t","interval":0}"#).unwrap();
        assert!(m.validate().unwrap_err().to_string().contains("interval"));
    }

    #[test]
    fn queue_can_be_set_kept_or_cleared() {
        let set: TickerMeta = serde_json::from_str(r#"{"queue":"Reports"}"#).unwrap();
        assert_eq!(
            set.validate().unwrap().queue,
            Some(Some(QueueName::parse("reports").unwrap()))
        );
        let clear: TickerMeta = serde_json::from_str(r#"{"queue":null}"#).unwrap();
        assert_eq!(clear.validate().unwrap().queue, Some(None));
        let keep: TickerMeta = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(keep.validate().unwrap().queue, None);
        assert!(keep.validate().unwrap().is_empty());
    }

    #[test]
    fn names_are_validated_and_next_is_refused() {
        assert_eq!(
            TickerMeta::default().validate_new().unwrap_err(),
            Error::MissingName("ticker")
        );
        let m = TickerMeta {
            ticker: Some("next".into()),
            ..Default::default()
        };
        assert!(m.validate_new().is_err());
    }

    #[test]
    fn from_patch_applies_settings_but_never_the_patch_name() {
        let patch = TickerMeta {
            ticker: Some("other".into()),
            payload: Some(json!(1)),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let t = Ticker::from_patch(
            Namespace::default(),
            TickerName::parse("beat").unwrap(),
            &patch,
        );
        assert_eq!(
            (t.name.as_str(), t.payload, t.interval),
            ("beat", json!(1), DEFAULT_INTERVAL)
        );
    }

    #[test]
    fn updating_keeps_the_timestamp() {
        let mut t = ticker();
        t.claim(t0()).unwrap();
        let patch = TickerMeta {
            payload: Some(json!({"a":1})),
            ..Default::default()
        }
        .validate()
        .unwrap();
        t.apply(&patch);
        assert_eq!(t.timestamp, Some(t0()));
        assert_eq!(t.payload, json!({"a":1}));
    }
}
