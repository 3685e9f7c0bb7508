//! Durations as the wire knows them: integer nanoseconds, or Go duration strings on input.
//!
//! pgqueue is wire-compatible with an earlier Go system whose clients send integer
//! nanoseconds; people typing JSON or CLI flags prefer `"90s"`. Both parse; output is always
//! integer nanoseconds so old clients keep working.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A signed span of time with nanosecond resolution (Go's `time.Duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(i64);

const NANOS_PER_MICRO: i64 = 1_000;
const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MIN: i64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MIN;

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(0);

    /// From integer nanoseconds.
    pub const fn from_nanos(n: i64) -> Self {
        Self(n)
    }
    /// From milliseconds.
    pub const fn from_millis(n: i64) -> Self {
        Self(n * NANOS_PER_MILLI)
    }
    /// From seconds.
    pub const fn from_secs(n: i64) -> Self {
        Self(n * NANOS_PER_SEC)
    }
    /// From minutes.
    pub const fn from_mins(n: i64) -> Self {
        Self(n * NANOS_PER_MIN)
    }
    /// From hours.
    pub const fn from_hours(n: i64) -> Self {
        Self(n * NANOS_PER_HOUR)
    }
    /// Integer nanoseconds, the wire form.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    /// Whole microseconds, truncated: the resolution of stored timestamps.
    pub const fn as_micros(self) -> i64 {
        self.0 / NANOS_PER_MICRO
    }
    /// Multiplies, saturating at the bounds instead of overflowing.
    pub fn saturating_mul(self, k: i64) -> Self {
        Self(self.0.saturating_mul(k))
    }
    /// As a std duration for sleeping; negative durations become zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Parses Go's duration syntax: an optional sign, then one or more decimal numbers each
    /// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `"1h30m"`, `"1.5s"`, `"-250ms"`;
    /// `"0"` alone is zero.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = || Error::InvalidDuration(input.to_string());
        let s = input.trim();
        let (negative, mut rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if rest == "0" {
            return Ok(Self::ZERO);
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let digits_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            let number = &rest[..digits_end];
            rest = &rest[digits_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = match &rest[..unit_end] {
                "ns" => 1,
                "us" | "µs" | "μs" => NANOS_PER_MICRO,
                "ms" => NANOS_PER_MILLI,
                "s" => NANOS_PER_SEC,
                "m" => NANOS_PER_MIN,
                "h" => NANOS_PER_HOUR,
                _ => return Err(bad()),
            } as i128;
            rest = &rest[unit_end..];
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            if whole.is_empty() && frac.is_empty() {
                return Err(bad());
            }
            let whole: i128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| bad())?
            };
            let mut value = whole.checked_mul(unit).ok_or_else(bad)?;
            let mut scale = unit;
            for digit in frac.chars() {
                let d = digit.to_digit(10).ok_or_else(bad)? as i128;
                scale /= 10;
                value += d * scale;
            }
            total = total.checked_add(value).ok_or_else(bad)?;
            if total > i64::MAX as i128 {
                return Err(bad());
            }
        }
        let total = total as i64;
        Ok(Self(if negative { -total } else { total }))
    }
}

/// Writes `value / unit` with its fractional part, trailing zeros dropped (Go's style).
fn write_fraction(f: &mut fmt::Formatter<'_>, value: u64, unit: u64) -> fmt::Result {
    write!(f, "{}", value / unit)?;
    let frac = value % unit;
    if frac != 0 {
        let width = (unit as f64).log10().round() as usize;
        let digits = format!("{frac:0width$}");
        write!(f, ".{}", digits.trim_end_matches('0'))?;
    }
    Ok(())
}

impl fmt::Display for Duration {
    /// Formats like Go's `time.Duration.String()`: `1h30m0s`, `1.5s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let n = self.0.unsigned_abs();
        if n < NANOS_PER_MICRO as u64 {
            return write!(f, "{n}ns");
        }
        if n < NANOS_PER_MILLI as u64 {
            write_fraction(f, n, NANOS_PER_MICRO as u64)?;
            return f.write_str("µs");
        }
        if n < NANOS_PER_SEC as u64 {
            write_fraction(f, n, NANOS_PER_MILLI as u64)?;
            return f.write_str("ms");
        }
        let hours = n / NANOS_PER_HOUR as u64;
        let mins = (n % NANOS_PER_HOUR as u64) / NANOS_PER_MIN as u64;
        let secs = n % NANOS_PER_MIN as u64;
        if hours > 0 {
            write!(f, "{hours}h{mins}m")?;
        } else if mins > 0 {
            write!(f, "{mins}m")?;
        }
        write_fraction(f, secs, NANOS_PER_SEC as u64)?;
        f.write_str("s")
    }
}

impl std::str::FromStr for Duration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Duration {
    /// Integer nanoseconds (an integral float such as `1e9` too) or a Go duration string.
    /// Read through a JSON value: with exact numbers (serde_json's `arbitrary_precision`) a
    /// number arrives as a value, not as an `i64`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Duration::parse(&s).map_err(D::Error::custom),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Duration(i))
                } else if n.as_u64().is_some() {
                    Err(D::Error::custom("duration out of range"))
                } else {
                    match n.as_f64() {
                        Some(v) if v.fract() == 0.0 && v.abs() < i64::MAX as f64 => {
                            Ok(Duration(v as i64))
                        }
                        _ => Err(D::Error::custom(
                            "duration must be integer nanoseconds or a string such as \"90s\"",
                        )),
                    }
                }
            }
            other => Err(D::Error::custom(format!(
                "invalid type: {}, expected integer nanoseconds or a duration string such as \"90s\"",
                kind(&other)
            ))),
        }
    }
}

/// The JSON type of a value, as serde names it in errors.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "sequence",
        serde_json::Value::Object(_) => "map",
    }
}

/// The shortest `ttl`, `lease` or ticker `interval`: 100 ms. Anything shorter is almost
/// always seconds sent as nanoseconds (`{"interval": 60}` is 60 ns), and would make a ticker
/// fire without end or every task expire at once.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);

impl Duration {
    /// Refuses a period shorter than [`MIN_PERIOD`], with a hint at the unit.
    pub fn check_period(self, field: &'static str) -> Result<Duration> {
        if self < MIN_PERIOD {
            let hint = if self.0 > 0 { self.0 } else { 60 };
            return Err(Error::InvalidField {
                field,
                reason: format!(
                    "must be at least {MIN_PERIOD}, got {self} (JSON durations are integer \
                     nanoseconds, or strings such as \"{hint}s\")"
                ),
            });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_go_syntax() {
        assert_eq!(Duration::parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(Duration::parse("1h30m").unwrap(), Duration::from_mins(90));
        assert_eq!(
            Duration::parse("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            Duration::parse("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(Duration::parse("-2m").unwrap(), Duration::from_mins(-2));
        assert_eq!(Duration::parse("0").unwrap(), Duration::ZERO);
        assert_eq!(Duration::parse("3us").unwrap(), Duration::from_nanos(3000));
        assert_eq!(Duration::parse("3µs").unwrap(), Duration::from_nanos(3000));
        assert_eq!(Duration::parse(".5h").unwrap(), Duration::from_mins(30));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            "",
            "s",
            "90",
            "1x",
            "1h30",
            "--1s",
            "1.2.3s",
            "99999999999h",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(Duration::from_mins(90).to_string(), "1h30m0s");
        assert_eq!(Duration::from_millis(1500).to_string(), "1.5s");
        assert_eq!(Duration::from_millis(250).to_string(), "250ms");
        assert_eq!(Duration::from_nanos(1500).to_string(), "1.5µs");
        assert_eq!(Duration::from_nanos(12).to_string(), "12ns");
        assert_eq!(Duration::ZERO.to_string(), "0s");
        assert_eq!(Duration::from_secs(-61).to_string(), "-1m1s");
    }

    #[test]
    fn serializes_as_integer_nanoseconds_and_reads_both_forms() {
        assert_eq!(
            serde_json::to_string(&Duration::from_hours(1)).unwrap(),
            "3600000000000"
        );
        let d: Duration = serde_json::from_str("3600000000000").unwrap();
        assert_eq!(d, Duration::from_hours(1));
        let d: Duration = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(d, Duration::from_hours(1));
        assert!(serde_json::from_str::<Duration>("\"soon\"").is_err());
        assert!(serde_json::from_str::<Duration>("true").is_err());
        let d: Duration = serde_json::from_str("1e9").unwrap();
        assert_eq!(d, Duration::from_secs(1));
        assert!(serde_json::from_str::<Duration>("1.5").is_err());
        assert!(serde_json::from_str::<Duration>("99999999999999999999").is_err());
    }

    #[test]
    fn periods_have_a_floor_that_hints_at_the_unit() {
        assert_eq!(
            Duration::from_nanos(60)
                .check_period("interval")
                .unwrap_err()
                .to_string(),
            "invalid interval: must be at least 100ms, got 60ns (JSON durations are integer nanoseconds, or strings such as \"60s\")"
        );
        assert!(Duration::ZERO.check_period("ttl").is_err());
        assert_eq!(
            Duration::from_millis(100).check_period("lease").unwrap(),
            MIN_PERIOD
        );
    }

    proptest! {
        #[test]
        fn formatting_and_parsing_round_trip(n in any::<i64>().prop_filter("not MIN", |n| *n != i64::MIN)) {
            let d = Duration::from_nanos(n);
            prop_assert_eq!(Duration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
