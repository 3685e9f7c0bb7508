//! Flow control: how many tasks of a queue may run at once across every process, and how
//! fast they may start.
//!
//! Both limits are decided at claim time from the queue's shared state, which the store reads
//! and updates as one atomic step per claim (claims of one queue take turns): the number of
//! the queue's tasks retained now, and the token bucket of its rate. [`Limits::admit`] says how many tasks the claim may
//! take; [`Admission::bucket_after`] is the bucket the store writes back. A limit never
//! preempts: tasks already retained keep running when a limit is lowered or set, and the
//! next claim waits until the queue is below it.

use crate::duration::Duration;
use crate::error::{Error, Result};
use crate::time::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The largest `max_running` a queue may have.
pub const MAX_RUNNING: u32 = 1_000_000;
/// The highest rate a queue may have, in retains per second.
pub const MAX_RATE: f64 = 1_000_000.0;
/// The largest burst a rate may allow.
pub const MAX_BURST: u32 = 1_000_000;
/// The burst of a rate given without one: one task, so the rate is smooth unless asked
/// otherwise (a fragile API gets at most `per_second + 1` starts in any second).
pub const DEFAULT_BURST: u32 = 1;

/// How far below a whole token a bucket may be and still count it (floating-point sums of
/// refills land a rounding error short; a billionth of a token is never a real retain).
const TOKEN_EPSILON: f64 = 1e-9;

/// A queue's rate limit: at most `per_second` retains per second on average, with bursts of
/// at most `burst` (a token bucket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RateMeta", into = "RateMeta")]
pub struct Rate {
    per_second: f64,
    burst: u32,
}

// Rates are finite and positive by construction, so equality is total.
impl Eq for Rate {}

impl Rate {
    /// A rate, checked: `per_second` in (0, 1,000,000], `burst` in 1..=1,000,000.
    pub fn new(per_second: f64, burst: u32) -> Result<Self> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= MAX_RATE) {
            return Err(invalid_rate(format!(
                "per_second must be more than 0 and at most {MAX_RATE}, got {per_second}"
            )));
        }
        if !(1..=MAX_BURST).contains(&burst) {
            return Err(invalid_rate(format!(
                "burst must be between 1 and {MAX_BURST}, got {burst}"
            )));
        }
        Ok(Self { per_second, burst })
    }

    /// Retains per second on average.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The most retains at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The bucket at `now`: refilled for the time since it was last debited, never above the
    /// burst; a queue that never claimed under this rate starts full. Time never runs
    /// backwards for a bucket (a claim that began before the last debit refills nothing).
    pub fn refill(&self, bucket: Option<Bucket>, now: Timestamp) -> Bucket {
        let burst = f64::from(self.burst);
        // Stores keep instants to the microsecond; so does the bucket, so both agree.
        let now = crate::time::truncate(now);
        match bucket {
            None => Bucket {
                tokens: burst,
                at: now,
            },
            Some(b) => {
                let at = b.at.max(now);
                let elapsed = (at - b.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
                let tokens = (b.tokens + elapsed * self.per_second).min(burst);
                Bucket { tokens, at }
            }
        }
    }
}

fn invalid_rate(reason: String) -> Error {
    Error::InvalidField {
        field: "rate",
        reason,
    }
}

/// A rate as written on the wire and by users: `{"per_second": 100, "burst": 20}`
/// (`burst` defaults to [`DEFAULT_BURST`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a rate such as {"per_second": 100, "burst": 20}"#
)]
struct RateMeta {
    #[serde(deserialize_with = "number")]
    per_second: f64,
    #[serde(
        default,
        deserialize_with = "crate::json::optional_integer",
        skip_serializing_if = "Option::is_none"
    )]
    burst: Option<i64>,
}

/// A JSON number as `f64` (numbers are kept as text, so serde does not convert them).
fn number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| D::Error::custom(format!("invalid number {n}"))),
        other => Err(D::Error::custom(format!(
            "invalid type: {other}, expected a number"
        ))),
    }
}

impl TryFrom<RateMeta> for Rate {
    type Error = Error;
    fn try_from(m: RateMeta) -> Result<Self> {
        let burst = match m.burst {
            None => DEFAULT_BURST,
            Some(b) => u32::try_from(b).map_err(|_| {
                invalid_rate(format!("burst must be between 1 and {MAX_BURST}, got {b}"))
            })?,
        };
        Rate::new(m.per_second, burst)
    }
}

impl From<Rate> for RateMeta {
    fn from(r: Rate) -> Self {
        RateMeta {
            per_second: r.per_second,
            burst: Some(i64::from(r.burst)),
        }
    }
}

/// A rate's token bucket: `tokens` available at instant `at` (fractional between retains).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens available at `at`.
    pub tokens: f64,
    /// When the bucket was last refilled.
    pub at: Timestamp,
}

/// Which limit refused (part of) a claim; the metric's `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// The queue had `max_running` tasks retained.
    MaxRunning,
    /// The queue's rate had no token left.
    Rate,
}

impl Limit {
    /// The name used in metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxRunning => "max_running",
            Limit::Rate => "rate",
        }
    }
}

/// A queue's flow-control settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many of its tasks retained at once.
    pub max_running: Option<u32>,
    /// At most this many retains per second.
    pub rate: Option<Rate>,
}

impl Limits {
    /// Whether any limit is set: only then does a claim need the queue's shared state.
    pub fn any(&self) -> bool {
        self.max_running.is_some() || self.rate.is_some()
    }

    /// How many of `asked` tasks a claim at `now` may take, given `running` tasks of the
    /// queue retained now and the rate's bucket as last written.
    pub fn admit(
        &self,
        running: u64,
        asked: u32,
        bucket: Option<Bucket>,
        now: Timestamp,
    ) -> Admission {
        let mut granted = asked;
        let mut limit = None;
        if let Some(max) = self.max_running {
            let free = u64::from(max).saturating_sub(running);
            let free = u32::try_from(free).unwrap_or(u32::MAX);
            if free < granted {
                granted = free;
                limit = Some(Limit::MaxRunning);
            }
        }
        let bucket = self.rate.map(|rate| (rate, rate.refill(bucket, now)));
        if let Some((_, b)) = bucket {
            // Whole tokens only; the fraction stays for the next claim. The nudge keeps a
            // sum like 0.8 + 0.2 from falling a rounding error short of a whole token.
            let whole = (b.tokens.max(0.0) + TOKEN_EPSILON).floor();
            let tokens = if whole >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                whole as u32
            };
            if tokens < granted {
                granted = tokens;
                limit = Some(Limit::Rate);
            }
        }
        Admission {
            granted,
            asked,
            limit,
            bucket,
        }
    }
}

/// The answer of [`Limits::admit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    granted: u32,
    asked: u32,
    limit: Option<Limit>,
    bucket: Option<(Rate, Bucket)>,
}

impl Admission {
    /// How many tasks the claim may take.
    pub fn granted(&self) -> u32 {
        self.granted
    }

    /// The limit that refused a claim that took `taken` tasks (at most [`granted`]) while
    /// more were waiting (`more_waiting`): none when the claim got all it asked for, or when
    /// it ran out of tasks before it ran into the limit.
    ///
    /// [`granted`]: Admission::granted
    pub fn refused_by(&self, taken: u32, more_waiting: bool) -> Option<Limit> {
        if self.granted < self.asked && taken >= self.granted && more_waiting {
            self.limit
        } else {
            None
        }
    }

    /// The rate's bucket refilled at the claim's instant, before any task is taken (none:
    /// the queue has no rate).
    pub fn refilled(&self) -> Option<Bucket> {
        self.bucket.map(|(_, b)| b)
    }

    /// The bucket to store after the claim took `taken` tasks. None when there is nothing to
    /// write: the queue has no rate, or the claim took nothing (a claim that took nothing
    /// leaves the bucket as it was, so a queue polled while empty or full keeps its state).
    pub fn bucket_after(&self, taken: u32) -> Option<Bucket> {
        if taken == 0 {
            return None;
        }
        self.refilled().map(|b| Bucket {
            tokens: b.tokens - f64::from(taken),
            at: b.at,
        })
    }

    /// How long until the rate allows one more retain after the claim took `taken` tasks
    /// (none: no rate, or a token is left): how long a refused worker sleeps.
    pub fn next_token_in(&self, taken: u32) -> Option<Duration> {
        let (rate, refilled) = self.bucket?;
        let tokens = refilled.tokens - f64::from(taken);
        if tokens + TOKEN_EPSILON >= 1.0 {
            return None;
        }
        let secs = (1.0 - tokens) / rate.per_second;
        Some(Duration::from_nanos(
            (secs * 1e9).ceil().min(i64::MAX as f64) as i64,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> Timestamp {
        chrono::Utc
            .timestamp_millis_opt(1_700_000_000_000 + ms)
            .unwrap()
    }

    #[test]
    fn max_running_grants_what_is_free_and_never_more() {
        let l = Limits {
            max_running: Some(5),
            rate: None,
        };
        let a = l.admit(3, 10, None, at(0));
        assert_eq!(a.granted(), 2);
        assert_eq!(a.refused_by(2, true), Some(Limit::MaxRunning));
        assert_eq!(a.refused_by(1, false), None, "ran out of tasks first");
        assert_eq!(l.admit(5, 1, None, at(0)).granted(), 0);
        assert_eq!(l.admit(9, 1, None, at(0)).granted(), 0, "a lowered limit");
        let enough = l.admit(0, 4, None, at(0));
        assert_eq!((enough.granted(), enough.refused_by(4, true)), (4, None));
    }

    #[test]
    fn a_rate_starts_full_spends_whole_tokens_and_refills_with_time() {
        let rate = Rate::new(50.0, 10).unwrap();
        let l = Limits {
            max_running: None,
            rate: Some(rate),
        };
        let a = l.admit(0, 64, None, at(0));
        assert_eq!(a.granted(), 10, "the burst");
        assert_eq!(a.refused_by(10, true), Some(Limit::Rate));
        let b = a.bucket_after(10).unwrap();
        assert_eq!(b.tokens, 0.0);
        assert_eq!(
            a.bucket_after(0),
            None,
            "a claim that took nothing writes nothing"
        );
        assert_eq!(a.next_token_in(10), Some(Duration::from_millis(20)));
        // 30 ms later: 1.5 tokens, one retain, half a token kept.
        let a = l.admit(0, 64, Some(b), at(30));
        assert_eq!(a.granted(), 1);
        assert!((a.refilled().unwrap().tokens - 1.5).abs() < 1e-9);
        let b = a.bucket_after(1).unwrap();
        assert!((b.tokens - 0.5).abs() < 1e-9);
        // Never above the burst however long the queue was quiet.
        assert_eq!(l.admit(0, 64, Some(b), at(3_600_000)).granted(), 10);
    }

    #[test]
    fn a_claim_that_started_before_the_last_debit_refills_nothing() {
        let rate = Rate::new(100.0, 5).unwrap();
        let b = Bucket {
            tokens: 0.0,
            at: at(1_000),
        };
        let refilled = rate.refill(Some(b), at(900));
        assert_eq!(refilled, b, "time does not run backwards for a bucket");
    }

    #[test]
    fn the_tighter_limit_decides() {
        let l = Limits {
            max_running: Some(3),
            rate: Some(Rate::new(1.0, 2).unwrap()),
        };
        let a = l.admit(0, 10, None, at(0));
        assert_eq!((a.granted(), a.refused_by(2, true)), (2, Some(Limit::Rate)));
        let a = l.admit(2, 10, None, at(0));
        assert_eq!(
            (a.granted(), a.refused_by(1, true)),
            (1, Some(Limit::MaxRunning))
        );
    }

    #[test]
    fn rates_are_checked_and_read_from_json() {
        assert!(Rate::new(0.0, 1).is_err());
        assert!(Rate::new(f64::NAN, 1).is_err());
        assert!(Rate::new(f64::INFINITY, 1).is_err());
        assert!(Rate::new(1.0, 0).is_err());
        assert!(Rate::new(MAX_RATE * 2.0, 1).is_err());
        let r: Rate = serde_json::from_str(r#"{"per_second":100,"burst":20}"#).unwrap();
        assert_eq!((r.per_second(), r.burst()), (100.0, 20));
        let r: Rate = serde_json::from_str(r#"{"per_second":0.5}"#).unwrap();
        assert_eq!((r.per_second(), r.burst()), (0.5, DEFAULT_BURST));
        let err = serde_json::from_str::<Rate>(r#"{"per_second":-1}"#).unwrap_err();
        assert!(
            err.to_string().contains("per_second must be more than 0"),
            "{err}"
        );
        assert!(serde_json::from_str::<Rate>(r#"{"per_second":"x"}"#).is_err());
        assert!(serde_json::from_str::<Rate>(r#"{"per_second":1,"bogus":1}"#).is_err());
        assert_eq!(
            serde_json::to_value(Rate::new(2.5, 3).unwrap()).unwrap(),
            serde_json::json!({"per_second": 2.5, "burst": 3})
        );
    }
}
