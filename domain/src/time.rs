//! Time as the rulebook counts it.
//!
//! Stored timestamps have microsecond resolution (PostgreSQL's `timestamptz`), so every
//! instant the rules compute is truncated to microseconds. The in-memory adapter and the
//! database then agree to the microsecond, which the differential simulation relies on.
//!
//! Every timestamp pgqueue answers must be RFC 3339, whose years run from 0000 to 9999: a
//! later instant would be written `+10292-04-10T…`, which strict clients cannot parse. So
//! instants the rules compute (a backoff, a lease, a death) stop at [`MAX_TIMESTAMP`], and an
//! input that would push a stored instant past it is refused.

use crate::duration::Duration;
use crate::error::{Error, Result};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// An instant, UTC. Serialised as RFC 3339 with fractional seconds.
pub type Timestamp = DateTime<Utc>;

/// The last instant RFC 3339 can write, at microsecond resolution: 9999-12-31T23:59:59.999999Z.
pub const MAX_TIMESTAMP: Timestamp = match DateTime::from_timestamp_micros(253_402_300_799_999_999)
{
    Some(t) => t,
    None => DateTime::<Utc>::MAX_UTC,
};

/// The same instant as SQL writes it, for clamping inside statements.
pub const MAX_TIMESTAMP_SQL: &str = "9999-12-31 23:59:59.999999+00";

/// Drops sub-microsecond precision, as storing in PostgreSQL would.
pub fn truncate(t: Timestamp) -> Timestamp {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// `t + d`, at microsecond resolution, stopping at [`MAX_TIMESTAMP`].
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add_signed(TimeDelta::microseconds(d.as_micros()))
        .map_or(MAX_TIMESTAMP, |s| s.min(MAX_TIMESTAMP))
}

/// `t - d`, at microsecond resolution, stopping at the earliest instant chrono can hold
/// (a retention longer than history means "keep everything").
pub fn subtract(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_sub_signed(TimeDelta::microseconds(d.as_micros()))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `t + d` when it stays within RFC 3339's years; otherwise `field` is refused.
pub fn add_checked(field: &'static str, t: Timestamp, d: Duration) -> Result<Timestamp> {
    t.checked_add_signed(TimeDelta::microseconds(d.as_micros()))
        .filter(|s| *s <= MAX_TIMESTAMP)
        .ok_or_else(|| Error::InvalidField {
            field,
            reason: format!(
                "{} plus {d} is after {}, the last time RFC 3339 can write",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                MAX_TIMESTAMP.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        })
}

/// Refuses an input instant outside RFC 3339's years 0000–9999.
pub fn check_in_range(field: &'static str, t: Timestamp) -> Result<Timestamp> {
    let first = DateTime::from_timestamp(-62_167_219_200, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    if t < first || t > MAX_TIMESTAMP {
        return Err(Error::InvalidField {
            field,
            reason: "must be between the years 0000 and 9999".into(),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn addition_truncates_to_microseconds() {
        let later = add(t0(), Duration::from_nanos(1_999));
        assert_eq!(later, t0() + TimeDelta::microseconds(1));
        assert_eq!(
            add(t0(), Duration::from_hours(1)),
            t0() + TimeDelta::hours(1)
        );
    }

    #[test]
    fn computed_times_stop_at_the_end_of_rfc3339() {
        assert_eq!(
            MAX_TIMESTAMP.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "9999-12-31T23:59:59.999999Z"
        );
        let far = DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(add(far, Duration::from_nanos(i64::MAX)), MAX_TIMESTAMP);
        assert_eq!(
            add(t0(), Duration::from_nanos(i64::MAX)),
            t0() + TimeDelta::microseconds(i64::MAX / 1000)
        );
        let err = add_checked("delayed_at", far, Duration::from_hours(48)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid delayed_at: 9999-12-31T00:00:00Z plus 48h0m0s"),
            "{err}"
        );
        assert_eq!(
            add_checked("x", t0(), Duration::from_hours(1)).unwrap(),
            t0() + TimeDelta::hours(1)
        );
    }

    #[test]
    fn inputs_must_be_within_years_0000_to_9999() {
        assert!(check_in_range("delayed_at", t0()).is_ok());
        assert!(check_in_range("delayed_at", MAX_TIMESTAMP).is_ok());
        assert!(check_in_range("delayed_at", MAX_TIMESTAMP + TimeDelta::microseconds(1)).is_err());
        assert!(check_in_range("from", DateTime::<Utc>::MIN_UTC).is_err());
    }
}
