//! The schema restates some domain rules as CHECK constraints; these tests hold each equal to
//! the domain's constant, so changing one side alone fails here.

use super::strings;
use pgqueue_domain::duration::MIN_PERIOD;
use pgqueue_domain::queue::MAX_RETRIES;
use pgqueue_ports::StorageClock;
use pgqueue_tests::db::fresh_database;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every CHECK constraint of pgqueue's tables, by name, as PostgreSQL prints it.
async fn checks(url: &str) -> BTreeMap<String, String> {
    strings(
        url,
        "SELECT conname || '=' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE contype = 'c' AND conrelid IN ('queues'::regclass, 'tasks'::regclass, 'tickers'::regclass)",
    )
    .await
    .into_iter()
    .filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
    .collect()
}

#[tokio::test]
async fn check_constraints_equal_the_domains_constants() {
    let db = fresh_database().await;
    let _store = db.store(Arc::new(StorageClock)).await;
    let checks = checks(db.url()).await;
    let floor = MIN_PERIOD.as_nanos();
    let expect = |name: &str, def: String| {
        assert_eq!(checks.get(name), Some(&def), "{name}: {checks:#?}");
    };
    expect("queues_ttl_check", format!("CHECK ((ttl >= {floor}))"));
    expect("queues_lease_check", format!("CHECK ((lease >= {floor}))"));
    expect(
        "queues_retries_check",
        format!("CHECK (((retries >= 0) AND (retries <= {MAX_RETRIES})))"),
    );
    expect(
        "queues_retry_delay_check",
        "CHECK ((retry_delay >= 0))".into(),
    );
    expect(
        "tickers_interval_check",
        format!("CHECK ((\"interval\" >= {floor}))"),
    );
    expect(
        "tasks_max_retries_check",
        format!("CHECK (((max_retries >= 0) AND (max_retries <= {MAX_RETRIES})))"),
    );
}
