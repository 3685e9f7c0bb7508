//! Cron tickers: maturity at matching times only, exactly once, once after downtime; queue
//! tickers on cron schedules; switching schedules; the schedule question.

use super::*;
use chrono::Timelike;

/// The first instant after `t` whose minute is a multiple of `every` (and second 0).
fn next_boundary(t: DateTime<Utc>, every: u32) -> DateTime<Utc> {
    let base = t.with_second(0).unwrap().with_nanosecond(0).unwrap();
    let minute = base.minute();
    let ahead = every - minute % every;
    base + TimeDelta::minutes(i64::from(ahead))
}

fn cron_meta(name: &str, expr: &str) -> TickerMeta {
    TickerMeta {
        ticker: Some(name.into()),
        cron: Some(expr.into()),
        ..Default::default()
    }
}

/// A cron ticker does not fire at creation; it matures at each matching time, is claimed
/// once per maturity, and after downtime fires once.
pub async fn cron_tickers_mature_at_matching_times_only(s: Subject) {
    let m = s.manager("cron");
    let t = m
        .create_ticker(cron_meta("tenth", "*/10 * * * *"))
        .await
        .unwrap();
    let first = next_boundary(s.now(), 10);
    assert_eq!((t.next_at, t.timestamp), (first, None));
    assert_eq!(t.schedule.interval(), None);
    assert_eq!(m.next_ticker().await.unwrap(), None, "not at creation");
    s.advance(first - s.now() - TimeDelta::seconds(1));
    assert_eq!(m.next_ticker().await.unwrap(), None, "not before its time");
    s.advance(TimeDelta::seconds(1));
    let claimed = m.next_ticker().await.unwrap().expect("matured");
    assert_eq!(
        (claimed.timestamp, claimed.next_at),
        (Some(first), first + TimeDelta::minutes(10))
    );
    assert_eq!(m.next_ticker().await.unwrap(), None, "claimed once");
    // Down for 35 minutes: three maturities missed, one fire.
    s.advance(TimeDelta::minutes(35));
    let late = m
        .next_ticker()
        .await
        .unwrap()
        .expect("fires after downtime");
    assert_eq!(late.next_at, first + TimeDelta::minutes(40));
    assert_eq!(
        m.next_ticker().await.unwrap(),
        None,
        "once, not per missed time"
    );
    let scope = TickerScope::Deliveries(m.namespace().clone());
    assert_eq!(
        s.store.next_maturity(&scope).await.unwrap(),
        Some((first + TimeDelta::minutes(40) - s.now()).to_std().unwrap())
    );
}

/// A cron queue ticker creates one task per maturity, like an interval one.
pub async fn cron_queue_tickers_create_one_task_per_maturity(s: Subject) {
    let m = s.manager("cronq");
    queue(&m, "reports").await;
    m.create_ticker(TickerMeta {
        queue: Some(Some("reports".into())),
        timezone: Some("Europe/Berlin".into()),
        ..cron_meta("quarter", "*/15 * * * *")
    })
    .await
    .unwrap();
    assert!(s.store.fire_queue_tickers(10).await.unwrap().is_empty());
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let next = m.get_ticker("quarter").await.unwrap().next_at;
        s.advance(next - s.now());
        let fired = s.store.fire_queue_tickers(10).await.unwrap();
        assert_eq!(fired.len(), 1);
        tasks.push(fired[0].task.clone().expect("a task").id);
        assert!(s.store.fire_queue_tickers(10).await.unwrap().is_empty());
    }
    let listed = m
        .list_tasks(&pgqueue_domain::TaskFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.count, 3);
    assert_eq!(listed.items.iter().map(|t| t.id).collect::<Vec<_>>(), tasks);
}

/// A patch switches between interval and cron; re-registering the same schedule (a server
/// restarting) keeps the stored maturity, even one that has passed; bad schedules are
/// refused naming the field.
pub async fn cron_schedules_switch_and_survive_re_registering(s: Subject) {
    let m = s.manager("switch");
    m.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        interval: Some(Duration::from_secs(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    let cron = m
        .update_ticker("t", cron_meta("t", "@hourly"))
        .await
        .unwrap();
    let hour = next_boundary(s.now(), 60);
    assert_eq!((cron.schedule.interval(), cron.next_at), (None, hour));
    assert_eq!(
        cron.schedule
            .cron()
            .map(|c| (c.expr().as_str(), c.zone().name())),
        Some(("@hourly", "UTC"))
    );
    s.advance(TimeDelta::hours(2));
    let again = m.register_ticker(cron_meta("t", "@hourly")).await.unwrap();
    assert_eq!(
        again.next_at, hour,
        "re-registering does not move a missed maturity"
    );
    assert!(
        m.next_ticker().await.unwrap().is_some(),
        "and it fires once"
    );
    let back = m
        .update_ticker(
            "t",
            TickerMeta {
                interval: Some(Duration::from_mins(5)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(back.schedule.interval(), Some(Duration::from_mins(5)));
    assert!(back.schedule.cron().is_none());
    for (meta, field) in [
        (cron_meta("bad", "61 * * * *"), "cron"),
        (
            TickerMeta {
                timezone: Some("Nowhere/City".into()),
                ..cron_meta("bad", "* * * * *")
            },
            "timezone",
        ),
        (
            TickerMeta {
                interval: Some(Duration::from_secs(1)),
                ..cron_meta("bad", "* * * * *")
            },
            "cron",
        ),
        (cron_meta("bad", "0 0 30 2 *"), "cron"),
    ] {
        match m.create_ticker(meta).await {
            Err(Error::Invalid(e)) => {
                assert!(
                    e.to_string().starts_with(&format!("invalid {field}: ")),
                    "{e}"
                )
            }
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    match m
        .update_ticker(
            "t",
            TickerMeta {
                timezone: Some("UTC".into()),
                ..Default::default()
            },
        )
        .await
    {
        Err(Error::Invalid(e)) => assert!(e.to_string().starts_with("invalid timezone: ")),
        other => panic!("a zone on an interval ticker: {other:?}"),
    }
}

/// The schedule question answers the next maturities strictly after a time.
pub async fn ticker_schedule_lists_the_next_maturities(s: Subject) {
    let m = s.manager("sched");
    m.create_ticker(cron_meta("c", "0 12 * * *")).await.unwrap();
    let noon = |days: i64| {
        (s.now() + TimeDelta::days(days))
            .date_naive()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
    };
    let from = noon(1);
    assert_eq!(
        m.ticker_schedule("c", Some(3), Some(from)).await.unwrap(),
        vec![noon(2), noon(3), noon(4)],
        "strictly after from"
    );
    assert_eq!(m.ticker_schedule("c", None, None).await.unwrap().len(), 5);
    for n in [0, 101] {
        assert!(matches!(
            m.ticker_schedule("c", Some(n), None).await,
            Err(Error::Invalid(_))
        ));
    }
    assert!(matches!(
        m.ticker_schedule("nope", None, None).await,
        Err(Error::NotFound(_))
    ));
}
