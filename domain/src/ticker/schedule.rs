//! When a ticker matures: every fixed interval, or at the wall-clock times of a cron
//! expression in a time zone.
//!
//! Cron expressions are parsed and iterated by [`croner`], time zones come from
//! [`chrono_tz`] (the IANA database compiled in). croner follows the Open Cron Pattern
//! Specification's daylight-saving rules, which are pgqueue's: a time that does not exist
//! (the spring-forward gap) fires once at the first instant after the gap; a time that
//! occurs twice (fall-back) fires once, at its first occurrence, when the expression names
//! fixed seconds, minutes and hours; expressions with wildcards or steps in those fields
//! (`*/15 * * * *`) fire on both occurrences, so they keep their rhythm in real time.

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::time::{self, MAX_TIMESTAMP, Timestamp};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

/// A ticker's schedule: exactly one of an interval or a cron expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Matures one interval after it last fired (at once when it never fired).
    Every(Duration),
    /// Matures at each matching wall-clock time (boxed: the parsed expression is large).
    Cron(Box<Cron>),
}

impl Schedule {
    /// The first maturity strictly after `after`, for a ticker that fired at `after`
    /// (interval: `after + interval`). A cron expression with no further match (none exist
    /// for the expressions accepted) answers [`MAX_TIMESTAMP`].
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        match self {
            Schedule::Every(i) => time::add(after, *i),
            Schedule::Cron(c) => c.next_after(after).unwrap_or(MAX_TIMESTAMP),
        }
    }

    /// The interval, if it is one.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Schedule::Every(i) => Some(*i),
            Schedule::Cron(_) => None,
        }
    }

    /// The cron schedule, if it is one.
    pub fn cron(&self) -> Option<&Cron> {
        match self {
            Schedule::Every(_) => None,
            Schedule::Cron(c) => Some(c.as_ref()),
        }
    }

    /// Rebuilds a stored schedule: an interval, or an expression with its zone.
    pub fn from_parts(
        interval: Option<Duration>,
        cron: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Self> {
        match (interval, cron) {
            (Some(i), None) => Ok(Schedule::Every(i)),
            (None, Some(expr)) => Ok(Schedule::Cron(Box::new(Cron::new(
                CronExpr::parse(expr)?,
                timezone.map(Zone::parse).transpose()?.unwrap_or_default(),
            )))),
            (Some(_), Some(_)) => Err(both()),
            (None, None) => Err(Error::InvalidField {
                field: "interval",
                reason: "a ticker needs an interval or a cron schedule".into(),
            }),
        }
    }
}

/// The refusal of a ticker given both kinds of schedule.
pub(crate) fn both() -> Error {
    Error::InvalidField {
        field: "cron",
        reason: "a ticker has either an interval or a cron schedule, not both".into(),
    }
}

/// A parsed cron expression, kept with its text as given (trimmed).
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    parsed: croner::Cron,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl CronExpr {
    /// Parses 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first):
    /// numbers, `*`, ranges, steps, lists, month and day names, and the nicknames `@yearly`
    /// (`@annually`), `@monthly`, `@weekly`, `@daily`, `@hourly`. croner's extensions (`L`,
    /// `W`, `#`) are accepted too.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let invalid = |reason: String| Error::InvalidField {
            field: "cron",
            reason: format!("{text:?}: {reason}"),
        };
        if text.is_empty() {
            return Err(invalid("empty expression".into()));
        }
        // croner reads 7 fields as a year field; pgqueue takes 5 or 6.
        let fields = text.split_whitespace().count();
        if !text.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(invalid(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got {fields}"
            )));
        }
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            text: text.to_string(),
            parsed,
        })
    }

    /// The expression as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An IANA time zone (`Europe/Berlin`, `UTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Default for Zone {
    /// UTC: what a cron ticker given no zone reads its expression in.
    fn default() -> Self {
        Zone(Tz::UTC)
    }
}

impl Zone {
    /// Parses an IANA zone name, exactly as the database spells it.
    pub fn parse(name: &str) -> Result<Self> {
        let name = name.trim();
        name.parse::<Tz>().map(Zone).map_err(|_| Error::InvalidField {
            field: "timezone",
            reason: format!("unknown time zone {name:?} (expected an IANA name such as \"Europe/Berlin\" or \"UTC\")"),
        })
    }

    /// Its IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// A cron expression read in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    expr: CronExpr,
    zone: Zone,
}

impl Cron {
    /// The expression in the zone.
    pub fn new(expr: CronExpr, zone: Zone) -> Self {
        Self { expr, zone }
    }

    /// The expression.
    pub fn expr(&self) -> &CronExpr {
        &self.expr
    }

    /// The zone.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The first matching instant strictly after `after`; `None` when there is none before
    /// [`MAX_TIMESTAMP`] (or croner gave up searching).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = after.with_timezone(&self.zone.0);
        self.expr
            .parsed
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.to_utc())
            .filter(|t| *t <= MAX_TIMESTAMP)
    }
}
