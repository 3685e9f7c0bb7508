//! What a user sends to create or change a ticker, and its validated form.

use super::schedule::{Cron, CronExpr, Schedule, Zone, both};
use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::json::check_storable;
use crate::name::{QueueName, TickerName};
use crate::time::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

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
    /// Time between maturities, ≥ 100 ms. Not with `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Alias of `interval` (the earlier system's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Duration>,
    /// A cron expression (5 or 6 fields, or a nickname such as `@hourly`). Not with
    /// `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
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
    /// Accepted so that a ticker read back can be sent again; ignored (it follows from the
    /// schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Timestamp>,
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

/// A validated set of changes to a ticker. Only [`TickerMeta::validate`] makes one. It
/// holds an interval or a cron expression, never both, and maybe a zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickerPatch {
    name: Option<TickerName>,
    payload: Option<Value>,
    interval: Option<Duration>,
    cron: Option<CronExpr>,
    timezone: Option<Zone>,
    queue: Option<Option<QueueName>>,
    priority: Option<Option<i16>>,
}

impl TickerPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.payload.is_none()
            && self.interval.is_none()
            && self.cron.is_none()
            && self.timezone.is_none()
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
    /// The new cron expression.
    pub fn cron(&self) -> Option<&CronExpr> {
        self.cron.as_ref()
    }
    /// The new time zone.
    pub fn timezone(&self) -> Option<Zone> {
        self.timezone
    }
    /// The new target queue: `Some(None)` removes it.
    pub fn queue(&self) -> Option<Option<&QueueName>> {
        self.queue.as_ref().map(Option::as_ref)
    }
    /// The new priority of the tasks it creates: `Some(None)` resets it.
    pub fn priority(&self) -> Option<Option<i16>> {
        self.priority
    }

    /// The schedule a ticker with schedule `current` has after this patch: an interval
    /// replaces a cron schedule and the other way round; a cron expression alone keeps a
    /// cron ticker's zone (a new cron schedule reads in UTC); a zone alone needs a cron
    /// ticker.
    pub(super) fn schedule_from(&self, current: &Schedule) -> Result<Schedule> {
        if let Some(i) = self.interval {
            return Ok(Schedule::Every(i));
        }
        let current_zone = current.cron().map(Cron::zone);
        match (&self.cron, self.timezone) {
            (Some(expr), zone) => Ok(Schedule::Cron(Box::new(Cron::new(
                expr.clone(),
                zone.or(current_zone).unwrap_or_default(),
            )))),
            (None, Some(zone)) => match current.cron() {
                Some(c) => Ok(Schedule::Cron(Box::new(Cron::new(c.expr().clone(), zone)))),
                None => Err(Error::InvalidField {
                    field: "timezone",
                    reason: "only a cron ticker has a time zone: give a cron expression too".into(),
                }),
            },
            (None, None) => Ok(current.clone()),
        }
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
        let cron = self.cron.as_deref().map(CronExpr::parse).transpose()?;
        if interval.is_some() && cron.is_some() {
            return Err(both());
        }
        let timezone = self.timezone.as_deref().map(Zone::parse).transpose()?;
        if interval.is_some() && timezone.is_some() {
            return Err(Error::InvalidField {
                field: "timezone",
                reason: "an interval ticker has no time zone".into(),
            });
        }
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
            cron,
            timezone,
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
        if patch.cron.is_none() && patch.timezone.is_some() {
            return Err(Error::InvalidField {
                field: "timezone",
                reason: "only a cron ticker has a time zone: give a cron expression too".into(),
            });
        }
        Ok((name, patch))
    }
}
