//! The flag values clap cannot parse by itself: durations, limits that `none` removes,
//! rates, JSON and RFC 3339 times, each failing with a message that says what was expected.

use chrono::{DateTime, Utc};
use pgqueue_domain::Duration;

/// Parses `90s`, `1h30m`, or integer nanoseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<i64>() {
        Ok(ns) => Ok(Duration::from_nanos(ns)),
        Err(_) => Duration::parse(s).map_err(|e| e.to_string()),
    }
}

/// A flag that sets a value or, spelt `none`, removes it (`PATCH` with `null`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting<T> {
    /// Set it to this.
    Value(T),
    /// Remove it.
    Remove,
}

impl<T> Setting<T> {
    /// As a patch field: `Some(None)` removes.
    pub fn into_patch(self) -> Option<T> {
        match self {
            Setting::Value(v) => Some(v),
            Setting::Remove => None,
        }
    }
}

/// Parses `--max-running`: a count, or `none` to remove the limit.
pub fn parse_max_running(s: &str) -> Result<Setting<i64>, String> {
    match s.trim() {
        "none" => Ok(Setting::Remove),
        n => n
            .parse()
            .map(Setting::Value)
            .map_err(|_| format!("expected a number of tasks or none, got {s:?}")),
    }
}

/// Parses `--rate` as retains per second: `100/s`, `30/m`, `2/h`, `5` (per second), or
/// `none` to remove the limit.
pub fn parse_rate(s: &str) -> Result<Setting<f64>, String> {
    let s = s.trim();
    if s == "none" {
        return Ok(Setting::Remove);
    }
    let (count, seconds) = match s.split_once('/') {
        None => (s, 1.0),
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some((n, "h")) => (n, 3600.0),
        Some(_) => return Err(format!("expected N/s, N/m, N/h or none, got {s:?}")),
    };
    let count: f64 = count
        .trim()
        .parse()
        .map_err(|_| format!("expected N/s, N/m, N/h or none, got {s:?}"))?;
    Ok(Setting::Value(count / seconds))
}

/// Parses a JSON value, saying where it is malformed.
pub fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.to_utc())
        .map_err(|e| {
            format!("invalid time {s:?} (expected RFC 3339, e.g. 2026-01-02T15:04:05Z): {e}")
        })
}
