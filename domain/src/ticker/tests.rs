use super::*;
use crate::error::Error;
use chrono::{DateTime, TimeDelta};
use serde_json::json;

fn at(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn t0() -> Timestamp {
    at("2026-01-01T00:00:00Z")
}

fn ticker() -> Ticker {
    Ticker::new(
        Namespace::default(),
        TickerName::parse("hourly").unwrap(),
        t0(),
    )
}

fn meta(json: serde_json::Value) -> TickerMeta {
    serde_json::from_value(json).unwrap()
}

/// A cron ticker created at `created`.
fn cron(expr: &str, zone: &str, created: Timestamp) -> Ticker {
    let patch = meta(json!({"cron": expr, "timezone": zone}))
        .validate()
        .unwrap();
    Ticker::from_patch(
        Namespace::default(),
        TickerName::parse("c").unwrap(),
        &patch,
        created,
    )
    .unwrap()
}

/// Runs the ticker on a clock that ticks every `step` from `from` to `to`, claiming each
/// time it is matured, as a scheduler does; answers the instants it fired.
fn fires(t: &mut Ticker, from: Timestamp, to: Timestamp, step: TimeDelta) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut now = from;
    while now < to {
        if t.is_matured(now) {
            t.claim(now).unwrap();
            out.push(now);
        }
        now += step;
    }
    out
}

#[test]
fn a_new_interval_ticker_is_matured_and_a_claim_waits_one_interval() {
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
    assert_eq!(t.next_at, t0() + TimeDelta::seconds(121));
}

#[test]
fn defaults_and_wire_shape() {
    let v = serde_json::to_value(ticker()).unwrap();
    assert_eq!(
        v,
        json!({"ticker":"hourly","payload":{},"interval":60000000000i64,"namespace":"default",
               "next_at":"2026-01-01T00:00:00Z"})
    );
    let back: Ticker = serde_json::from_value(v).unwrap();
    assert_eq!(back, ticker());
}

#[test]
fn a_cron_tickers_wire_shape_has_cron_and_timezone_and_no_interval() {
    let t = cron("30 2 * * *", "Europe/Berlin", t0());
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["cron"], "30 2 * * *");
    assert_eq!(v["timezone"], "Europe/Berlin");
    assert!(v.get("interval").is_none());
    // 02:30 CET is 01:30 UTC.
    assert_eq!(v["next_at"], "2026-01-01T01:30:00Z");
    let back: Ticker = serde_json::from_value(v).unwrap();
    assert_eq!(back, t);
}

#[test]
fn period_is_an_alias_of_interval_and_must_be_positive() {
    let m: TickerMeta = serde_json::from_str(r#"{"ticker":"t","period":"5s"}"#).unwrap();
    assert_eq!(
        m.validate().unwrap().interval(),
        Some(Duration::from_secs(5))
    );
    let m: TickerMeta = serde_json::from_str(r#"{"ticker":"t","interval":0}"#).unwrap();
    assert!(m.validate().unwrap_err().to_string().contains("interval"));
}

#[test]
fn queue_can_be_set_kept_or_cleared() {
    let set = meta(json!({"queue":"Reports"}));
    assert_eq!(
        set.validate().unwrap().queue(),
        Some(Some(&QueueName::parse("reports").unwrap()))
    );
    let clear = meta(json!({"queue": null}));
    assert_eq!(clear.validate().unwrap().queue(), Some(None));
    let keep = meta(json!({}));
    assert_eq!(keep.validate().unwrap().queue(), None);
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
    let patch = meta(json!({"ticker":"other","payload":1}))
        .validate()
        .unwrap();
    let t = Ticker::from_patch(
        Namespace::default(),
        TickerName::parse("beat").unwrap(),
        &patch,
        t0(),
    )
    .unwrap();
    assert_eq!(
        (t.name.as_str(), t.payload, t.schedule),
        ("beat", json!(1), Schedule::Every(DEFAULT_INTERVAL))
    );
}

#[test]
fn updating_keeps_the_timestamp_and_the_next_maturity() {
    let mut t = ticker();
    t.claim(t0()).unwrap();
    let next = t.next_at;
    t.apply(&meta(json!({"payload":{"a":1}})).validate().unwrap(), t0())
        .unwrap();
    assert_eq!((t.timestamp, t.next_at), (Some(t0()), next));
    assert_eq!(t.payload, json!({"a":1}));
    // The same schedule again (a restarting server re-registering) moves nothing.
    let later = t0() + TimeDelta::hours(5);
    t.apply(&meta(json!({"interval":"1m"})).validate().unwrap(), later)
        .unwrap();
    assert_eq!(t.next_at, next);
}

#[test]
fn a_changed_interval_applies_from_the_last_firing() {
    let mut t = ticker();
    t.claim(t0()).unwrap();
    t.apply(
        &meta(json!({"interval":"10m"})).validate().unwrap(),
        t0() + TimeDelta::minutes(1),
    )
    .unwrap();
    assert_eq!(t.next_at, t0() + TimeDelta::minutes(10));
}

#[test]
fn interval_and_cron_exclude_each_other_and_a_patch_switches_kinds() {
    let err = meta(json!({"interval":"1m","cron":"* * * * *"}))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid cron: a ticker has either an interval or a cron schedule, not both"
    );
    let mut t = ticker();
    t.claim(t0()).unwrap();
    let now = at("2026-01-01T00:00:10Z");
    t.apply(&meta(json!({"cron":"@hourly"})).validate().unwrap(), now)
        .unwrap();
    assert_eq!(t.schedule.interval(), None);
    assert_eq!(t.schedule.cron().unwrap().zone().name(), "UTC");
    assert_eq!(t.next_at, at("2026-01-01T01:00:00Z"));
    // A zone alone keeps the expression; an interval drops both.
    t.apply(
        &meta(json!({"timezone":"Asia/Tokyo"})).validate().unwrap(),
        now,
    )
    .unwrap();
    assert_eq!(t.schedule.cron().unwrap().expr().as_str(), "@hourly");
    assert_eq!(t.schedule.cron().unwrap().zone().name(), "Asia/Tokyo");
    t.apply(&meta(json!({"interval":"1m"})).validate().unwrap(), now)
        .unwrap();
    assert_eq!(t.schedule, Schedule::Every(DEFAULT_INTERVAL));
    assert_eq!(t.next_at, t0() + TimeDelta::minutes(1));
    // A zone on an interval ticker is refused.
    let err = t
        .apply(&meta(json!({"timezone":"UTC"})).validate().unwrap(), now)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid timezone: only a cron ticker")
    );
}

#[test]
fn invalid_expressions_and_zones_are_refused_naming_them() {
    for expr in [
        "61 * * * *",
        "* * *",
        "bogus",
        "",
        "* * * * * * *",
        "*/0 * * * *",
    ] {
        let err = meta(json!({ "cron": expr })).validate().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("invalid cron: "), "{expr}: {text}");
        assert!(
            text.contains(&format!("{:?}", expr.trim())),
            "{expr}: {text}"
        );
    }
    let err = meta(json!({"cron":"* * * * *","timezone":"Mars/Olympus"}))
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid timezone: unknown time zone \"Mars/Olympus\" (expected an IANA name such as \"Europe/Berlin\" or \"UTC\")"
    );
    let err = meta(json!({"ticker":"t","timezone":"UTC"}))
        .validate_new()
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid timezone:"));
}

#[test]
fn five_and_six_fields_names_and_nicknames_are_accepted() {
    let from = at("2026-03-02T00:00:00Z"); // a Monday
    let next = |expr: &str| cron(expr, "UTC", from).next_at;
    assert_eq!(next("*/10 * * * * *"), at("2026-03-02T00:00:10Z"));
    assert_eq!(next("0 9 * * MON-FRI"), at("2026-03-02T09:00:00Z"));
    assert_eq!(next("0 0 1 JAN *"), at("2027-01-01T00:00:00Z"));
    assert_eq!(next("5,35 * * * *"), at("2026-03-02T00:05:00Z"));
    assert_eq!(next("@yearly"), at("2027-01-01T00:00:00Z"));
    assert_eq!(next("@monthly"), at("2026-04-01T00:00:00Z"));
    assert_eq!(next("@weekly"), at("2026-03-08T00:00:00Z"));
    assert_eq!(next("@daily"), at("2026-03-03T00:00:00Z"));
    assert_eq!(next("@hourly"), at("2026-03-02T01:00:00Z"));
}

#[test]
fn a_new_cron_ticker_does_not_fire_at_creation() {
    let created = at("2026-05-05T10:15:00Z");
    let t = cron("0 * * * *", "UTC", created);
    assert!(!t.is_matured(created));
    assert_eq!(t.next_at, at("2026-05-05T11:00:00Z"));
}

#[test]
fn after_downtime_a_cron_ticker_fires_once_then_keeps_its_rhythm() {
    let mut t = cron("@hourly", "UTC", at("2026-05-05T10:15:00Z"));
    let back = at("2026-05-05T14:20:00Z");
    assert!(t.is_matured(back));
    t.claim(back).unwrap();
    assert!(!t.is_matured(back));
    assert_eq!(t.next_at, at("2026-05-05T15:00:00Z"));
}

#[test]
fn feb_29_fires_only_in_leap_years() {
    let t = cron("0 0 29 2 *", "UTC", at("2026-01-01T00:00:00Z"));
    assert_eq!(
        t.upcoming(at("2026-01-01T00:00:00Z"), 3),
        vec![
            at("2028-02-29T00:00:00Z"),
            at("2032-02-29T00:00:00Z"),
            at("2036-02-29T00:00:00Z")
        ]
    );
}

#[test]
fn an_expression_that_never_matches_is_refused() {
    let patch = meta(json!({"cron":"0 0 30 2 *"})).validate().unwrap();
    let err = Ticker::from_patch(
        Namespace::default(),
        TickerName::parse("never").unwrap(),
        &patch,
        t0(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid cron: \"0 0 30 2 *\" never matches"
    );
}

// ---- daylight saving: golden instants, in UTC ----

#[test]
fn spring_forward_new_york_a_time_in_the_gap_fires_once_just_after_it() {
    // 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
    let mut t = cron("30 2 * * *", "America/New_York", at("2026-03-07T12:00:00Z"));
    let fired = fires(
        &mut t,
        at("2026-03-08T05:00:00Z"), // midnight EST
        at("2026-03-09T04:00:00Z"), // midnight EDT
        TimeDelta::seconds(30),
    );
    assert_eq!(fired, vec![at("2026-03-08T07:00:00Z")]); // 03:00 EDT
    assert_eq!(t.next_at, at("2026-03-09T06:30:00Z")); // 02:30 EDT
}

#[test]
fn spring_forward_berlin_a_time_in_the_gap_fires_once_just_after_it() {
    // 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST.
    let mut t = cron("30 2 * * *", "Europe/Berlin", at("2026-03-28T12:00:00Z"));
    let fired = fires(
        &mut t,
        at("2026-03-28T23:00:00Z"),
        at("2026-03-29T22:00:00Z"),
        TimeDelta::seconds(30),
    );
    assert_eq!(fired, vec![at("2026-03-29T01:00:00Z")]); // 03:00 CEST
    assert_eq!(t.next_at, at("2026-03-30T00:30:00Z")); // 02:30 CEST
}

#[test]
fn fall_back_new_york_a_repeated_time_fires_once_at_its_first_occurrence() {
    // 2026-11-01: clocks fall back from 02:00 EDT to 01:00 EST; 01:30 happens twice.
    let mut t = cron("30 1 * * *", "America/New_York", at("2026-10-31T12:00:00Z"));
    let fired = fires(
        &mut t,
        at("2026-11-01T04:00:00Z"), // midnight EDT
        at("2026-11-02T05:00:00Z"), // midnight EST
        TimeDelta::seconds(30),
    );
    assert_eq!(fired, vec![at("2026-11-01T05:30:00Z")]); // 01:30 EDT, not 01:30 EST
    assert_eq!(t.next_at, at("2026-11-02T06:30:00Z"));
}

#[test]
fn fall_back_berlin_a_repeated_time_fires_once_at_its_first_occurrence() {
    // 2026-10-25: clocks fall back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    let mut t = cron("30 2 * * *", "Europe/Berlin", at("2026-10-24T12:00:00Z"));
    let fired = fires(
        &mut t,
        at("2026-10-24T22:00:00Z"),
        at("2026-10-25T23:00:00Z"),
        TimeDelta::seconds(30),
    );
    assert_eq!(fired, vec![at("2026-10-25T00:30:00Z")]); // 02:30 CEST, not 02:30 CET
    assert_eq!(t.next_at, at("2026-10-26T01:30:00Z"));
}

#[test]
fn every_15_minutes_keeps_real_time_through_both_changes_in_both_zones() {
    for (zone, change) in [
        ("America/New_York", "2026-03-08T07:00:00Z"),
        ("America/New_York", "2026-11-01T06:00:00Z"),
        ("Europe/Berlin", "2026-03-29T01:00:00Z"),
        ("Europe/Berlin", "2026-10-25T01:00:00Z"),
    ] {
        let change = at(change);
        let from = change - TimeDelta::hours(3);
        let mut t = cron("*/15 * * * *", zone, from);
        let fired = fires(
            &mut t,
            from,
            change + TimeDelta::hours(3),
            TimeDelta::seconds(15),
        );
        // Created at `from`, it first fires 15 minutes later: 23 times in the 6 hours.
        assert_eq!(fired.len(), 23, "{zone} around {change}: {fired:?}");
        for pair in fired.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                TimeDelta::minutes(15),
                "{zone} around {change}"
            );
        }
        let planned = cron("*/15 * * * *", zone, from).upcoming(from, 23);
        assert_eq!(
            planned, fired,
            "{zone}: the schedule agrees with the firings"
        );
    }
}

#[test]
fn upcoming_lists_interval_maturities_strictly_after_from() {
    let mut t = ticker();
    t.claim(t0()).unwrap(); // next at 00:01
    assert_eq!(
        t.upcoming(t0(), 3),
        vec![
            t0() + TimeDelta::minutes(1),
            t0() + TimeDelta::minutes(2),
            t0() + TimeDelta::minutes(3)
        ]
    );
    // From past the due maturity: the steps after `from`.
    assert_eq!(
        t.upcoming(t0() + TimeDelta::seconds(150), 2),
        vec![t0() + TimeDelta::minutes(3), t0() + TimeDelta::minutes(4)]
    );
}

#[test]
fn a_paused_ticker_never_matures_and_resumes_matured() {
    let mut t = ticker();
    t.pause(t0());
    assert!(!t.is_matured(t0() + TimeDelta::days(1)));
    t.resume();
    assert!(t.is_matured(t0() + TimeDelta::days(1)));
}
