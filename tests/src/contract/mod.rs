//! The storage contract suite: every behaviour of `docs/lifecycle.md` and `docs/tickers.md`, written once against the
//! `Store` port (through the `Manager`, as users reach it) and run against every adapter.
//!
//! An adapter instantiates the whole suite with one line in `tests/it/`:
//!
//! ```text
//! pgqueue_tests::store_contract_tests!(crate::memory::subject);
//! ```
//!
//! where `subject` is `async fn(Arc<ManualClock>) -> Subject`, giving a fresh, empty store
//! whose time is the given clock. Fresh per test matters: maintenance operations
//! (`rescue_leases`, `clean_up`) cover every namespace.

use chrono::{DateTime, TimeDelta, Utc};
use pgqueue_app::{Error, Manager};
use pgqueue_domain::{
    Duration, Outcome, Page, QueueMeta, Status, Task, TaskFilter, TaskMeta, TickerMeta, WorkerName,
};
use pgqueue_ports::{ManualClock, Store, TickerScope, Wakeup};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

/// A store under test, its clock, and whatever must live as long as it (a test database).
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock the store was built with.
    pub clock: Arc<ManualClock>,
    /// Dropped after the test: a database guard, a server, …
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

impl Subject {
    /// A manager of namespace `ns` on this store.
    pub fn manager(&self, ns: &str) -> Manager {
        Manager::new(self.store.clone())
            .with_namespace(ns)
            .expect("test namespace")
    }

    /// The clock's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.get()
    }

    /// Moves the store's time forward.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }
}

/// The time every contract test starts at: now, to the second (so stored values round-trip).
pub fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default()
}

/// Instantiates every contract test for one adapter. `$make` is a path to
/// `async fn(Arc<ManualClock>) -> Subject`.
///
/// The list below is the one list of contract tests. Every `pub async fn …(s: Subject)` of
/// the concern modules must be in it, which `every_contract_test_is_listed` checks, so no
/// adapter can miss a test.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(@list (@each $make;));
    };
    (@names) => {
        $crate::store_contract_tests!(@list (@strings))
    };
    (@list ($($prefix:tt)*)) => {
        $crate::store_contract_tests! { $($prefix)*
            // queues.rs
            queue_crud, queue_register_is_an_upsert, queue_rename_carries_tasks_and_delete_cascades,
            queue_listing_is_ordered_and_paginated, queue_statuses_count_every_status,
            // tasks.rs
            task_creation_follows_the_queue, task_batches_are_all_or_nothing,
            list_tasks_filters_and_paginates,
            // retain.rs
            retain_takes_the_oldest_due_task, retain_filters_by_queue, retain_sets_worker_start_and_lease,
            creating_tasks_wakes_sleepers, concurrent_retainers_never_share,
            group_commit_retainers_never_share, retain_for_gives_the_kth_oldest_task_to_the_kth_worker,
            group_commit_keeps_every_rule,
            // release.rs
            release_success, release_failure_backs_off_then_fails, release_is_refused_unless_retained,
            fencing_refuses_other_workers, heartbeat_extends_the_lease, lease_rescue_counts_a_failed_attempt,
            // ending.rs
            expiry_is_derived_and_final, clean_queue_removes_ended_tasks_now, clean_up_waits_for_retention,
            // namespaces.rs
            namespaces_are_isolated,
            // operate.rs
            cancel_ends_waiting_tasks_and_asks_retained_ones_to_stop, retry_brings_ended_tasks_back,
            redrive_retries_a_queues_ended_tasks, delete_and_purge_never_touch_retained_tasks,
            paused_queues_and_tickers_wait, operations_stay_in_their_namespace,
            // priorities.rs
            retain_order_is_priority_then_age, unique_keys_answer_the_task_that_holds_them,
            batches_answer_each_key_with_one_task, ticker_tasks_take_the_tickers_priority,
            // tickers.rs
            ticker_crud_keeps_timestamps, ticker_maturity_is_claimed_once, queue_tickers_become_tasks,
            next_maturity_measures_the_wait,
            // events.rs
            every_change_is_one_event_in_order, expired_tasks_are_announced_by_the_clean_up,
            events_stay_in_their_namespace_and_filter, readers_past_the_retention_window_are_reset,
            // limits.rs
            max_running_caps_what_is_retained_and_slots_come_back,
            a_rate_admits_its_burst_then_keeps_the_pace,
            limited_queues_share_a_claim_with_unlimited_ones,
            // cron.rs
            cron_tickers_mature_at_matching_times_only, cron_queue_tickers_create_one_task_per_maturity,
            cron_schedules_switch_and_survive_re_registering, ticker_schedule_lists_the_next_maturities,
        }
    };
    (@strings $($name:ident),* $(,)?) => { &[$(stringify!($name)),*] };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let clock = ::std::sync::Arc::new(::pgqueue_ports::ManualClock::new($crate::contract::start_time()));
                $crate::contract::$name($make(clock).await).await;
            }
        )*
    };
}

mod cron;
mod ending;
mod events;
mod limits;
mod namespaces;
mod operate;
mod priorities;
mod queues;
mod release;
mod retain;
mod tasks;
mod tickers;

pub use cron::*;
pub use ending::*;
pub use events::*;
pub use limits::*;
pub use namespaces::*;
pub use operate::*;
pub use priorities::*;
pub use queues::*;
pub use release::*;
pub use retain::*;
pub use tasks::*;
pub use tickers::*;

/// The contract tests the list names.
pub const LISTED: &[&str] = crate::store_contract_tests!(@names);

/// The concern modules' sources, to find every test they define.
const SOURCES: &[&str] = &[
    include_str!("cron.rs"),
    include_str!("ending.rs"),
    include_str!("events.rs"),
    include_str!("limits.rs"),
    include_str!("namespaces.rs"),
    include_str!("operate.rs"),
    include_str!("priorities.rs"),
    include_str!("queues.rs"),
    include_str!("release.rs"),
    include_str!("retain.rs"),
    include_str!("tasks.rs"),
    include_str!("tickers.rs"),
];

/// Every `pub async fn NAME(s: Subject)` in the concern modules.
pub fn defined() -> Vec<String> {
    let mut names = Vec::new();
    for source in SOURCES {
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ")
                && let Some((name, args)) = rest.split_once('(')
                && args.starts_with("s: Subject")
            {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    names
}

pub(crate) fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

pub(crate) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub(crate) async fn queue(m: &Manager, name: &str) {
    m.create_queue(QueueMeta {
        queue: Some(name.into()),
        ..Default::default()
    })
    .await
    .expect("create queue");
}

pub(crate) async fn task(m: &Manager, queue: &str, payload: serde_json::Value) -> Task {
    m.create_task(queue, TaskMeta::new(payload))
        .await
        .expect("create task")
        .into_task()
}

pub(crate) fn fail(error: serde_json::Value) -> Outcome {
    Outcome::failure(error).expect("a storable error")
}

pub(crate) fn worker(w: &str) -> WorkerName {
    WorkerName::parse(w).expect("worker")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_contract_test_is_listed() {
        let mut listed: Vec<String> = super::LISTED.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(
            listed,
            super::defined(),
            "the list in store_contract_tests! and the tests defined differ"
        );
    }
}
