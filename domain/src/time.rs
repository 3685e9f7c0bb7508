//! Time as the rulebook counts it.
//!
//! Stored timestamps have microsecond resolution (PostgreSQL's `timestamptz`), so every
//! instant the rules compute is truncated to microseconds. The in-memory adapter and the
//! database then agree to the microsecond, which the differential simulation relies on.

use crate::duration::Duration;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// An instant, UTC. Serialised as RFC 3339 with fractional seconds.
pub type Timestamp = DateTime<Utc>;

/// Drops sub-microsecond precision, as storing in PostgreSQL would.
pub fn truncate(t: Timestamp) -> Timestamp {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// `t + d`, at microsecond resolution, saturating at the end of representable time.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add_signed(TimeDelta::microseconds(d.as_micros()))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addition_truncates_to_microseconds() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let later = add(t, Duration::from_nanos(1_999));
        assert_eq!(later, t + TimeDelta::microseconds(1));
        assert_eq!(add(t, Duration::from_hours(1)), t + TimeDelta::hours(1));
    }

    #[test]
    fn huge_durations_saturate() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(add(t, Duration::from_nanos(i64::MAX)) > t);
    }
}
