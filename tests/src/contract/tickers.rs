//! Tickers: CRUD, exactly-once maturity claims, queue tickers, the wait until the next maturity.

use super::*;

/// Ticker CRUD; updating or re-registering keeps the timestamp; a ticker queue must exist.
pub async fn ticker_crud_keeps_timestamps(s: Subject) {
    let m = s.manager("tick");
    let t = m
        .create_ticker(TickerMeta {
            ticker: Some(" Hourly ".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (
            t.name.as_str(),
            t.payload.clone(),
            t.schedule.interval(),
            t.timestamp
        ),
        ("hourly", json!({}), Some(Duration::from_mins(1)), None)
    );
    assert!(matches!(
        m.create_ticker(TickerMeta {
            ticker: Some("hourly".into()),
            ..Default::default()
        })
        .await,
        Err(Error::Conflict(_))
    ));
    let claimed = m.next_ticker().await.unwrap().unwrap();
    assert_eq!(claimed.timestamp, Some(s.now()));
    let updated = m
        .update_ticker(
            "hourly",
            TickerMeta {
                payload: Some(json!({"k": 1})),
                interval: Some(Duration::from_secs(5)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.payload.clone(),
            updated.schedule.interval(),
            updated.timestamp
        ),
        (json!({"k": 1}), Some(Duration::from_secs(5)), Some(s.now()))
    );
    let reg = m
        .register_ticker(TickerMeta {
            ticker: Some("hourly".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        reg.timestamp,
        Some(s.now()),
        "re-registering does not fire again"
    );
    assert_eq!(m.next_ticker().await.unwrap(), None);
    m.create_ticker(TickerMeta {
        ticker: Some("daily".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let clash = m
        .update_ticker(
            "hourly",
            TickerMeta {
                ticker: Some("daily".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(clash, Err(Error::Conflict(_))));
    let renamed = m
        .update_ticker(
            "hourly",
            TickerMeta {
                ticker: Some("often".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.timestamp),
        ("often", Some(s.now()))
    );
    let list = m.list_tickers(Page::default()).await.unwrap();
    assert_eq!(
        list.items
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["daily", "often"]
    );
    assert!(matches!(
        m.get_ticker("hourly").await,
        Err(Error::NotFound(_))
    ));
    let ghost_queue = TickerMeta {
        ticker: Some("q".into()),
        queue: Some(Some("ghost".into())),
        ..Default::default()
    };
    assert!(matches!(
        m.create_ticker(ghost_queue).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        m.delete_ticker("daily").await.unwrap().name.as_str(),
        "daily"
    );
    assert!(matches!(
        m.delete_ticker("daily").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        m.create_ticker(TickerMeta {
            ticker: Some("next".into()),
            ..Default::default()
        })
        .await,
        Err(Error::Invalid(_))
    ));
}

/// A matured ticker is claimed once; the next maturity is one interval after the claim.
pub async fn ticker_maturity_is_claimed_once(s: Subject) {
    let m = s.manager("mature");
    m.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        interval: Some(Duration::from_secs(10)),
        ..Default::default()
    })
    .await
    .unwrap();
    let first = m.next_ticker().await.unwrap().unwrap();
    assert_eq!(first.timestamp, Some(s.now()));
    assert_eq!(m.next_ticker().await.unwrap(), None);
    s.advance(secs(9));
    assert_eq!(m.next_ticker().await.unwrap(), None);
    s.advance(secs(1));
    assert_eq!(
        m.next_ticker().await.unwrap().unwrap().timestamp,
        Some(s.now())
    );
    assert_eq!(m.next_ticker().await.unwrap(), None);
}

/// Tickers with a queue are not delivered; the server turns each maturity into one task, and
/// skips (but claims) a maturity whose queue was deleted.
pub async fn queue_tickers_become_tasks(s: Subject) {
    let m = s.manager("qt");
    queue(&m, "reports").await;
    let meta = TickerMeta {
        ticker: Some("nightly".into()),
        queue: Some(Some("reports".into())),
        payload: Some(json!({"r": 1})),
        ..Default::default()
    };
    m.create_ticker(meta).await.unwrap();
    assert_eq!(
        m.next_ticker().await.unwrap(),
        None,
        "queue tickers are not delivered"
    );
    let fired = s.store.fire_queue_tickers(10).await.unwrap();
    assert_eq!(fired.len(), 1);
    let t = fired[0].task.clone().expect("a task");
    assert_eq!(
        (t.queue.as_str(), t.payload.clone(), t.namespace.as_str()),
        ("reports", json!({"r": 1}), "qt")
    );
    assert!(s.store.fire_queue_tickers(10).await.unwrap().is_empty());
    s.advance(mins(1));
    m.delete_queue("reports").await.unwrap();
    let skipped = s.store.fire_queue_tickers(10).await.unwrap();
    assert_eq!((skipped.len(), skipped[0].task.clone()), (1, None));
    assert_eq!(
        m.get_ticker("nightly").await.unwrap().timestamp,
        Some(s.now())
    );
}

/// next_maturity tells how long until the earliest maturity of its scope.
pub async fn next_maturity_measures_the_wait(s: Subject) {
    let m = s.manager("wait");
    let scope = TickerScope::Deliveries(m.namespace().clone());
    assert_eq!(s.store.next_maturity(&scope).await.unwrap(), None);
    m.create_ticker(TickerMeta {
        ticker: Some("t".into()),
        interval: Some(Duration::from_secs(30)),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.store.next_maturity(&scope).await.unwrap(),
        Some(std::time::Duration::ZERO)
    );
    m.next_ticker().await.unwrap().unwrap();
    s.advance(secs(10));
    assert_eq!(
        s.store.next_maturity(&scope).await.unwrap(),
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(
        s.store.next_maturity(&TickerScope::Queued).await.unwrap(),
        None
    );
}
