//! Workloads that measure what a feature costs the hot path, each beside its plain form in
//! the same run: unique keys on creates (`W1a_unique`, `W1b_unique`) and priorities on the
//! drain (`W2_priority`), and flow control on the c32 drain (`W2_limited`, a `max_running`
//! that is never the bottleneck).

use super::report::{Report, peak_rss_mb, reset_peak_rss};
use super::{BenchArgs, drain, drain_with, fresh, precreate, precreate_with, vacuum, wants};
use crate::error::CliError;
use pgqueue_app::Manager;
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_postgres::PgStore;
use serde_json::json;
use std::time::Instant;

/// Gives the planner statistics of a table that holds keyed tasks (1,000 of them, with keys
/// the workload does not use), as autovacuum's analyze does within a minute of the first 50
/// rows.
/// A keyed create looks its key up; planned against the empty table `fresh` leaves (and the
/// bench runs no autovacuum), the lookup is a sequential scan and the workload measures
/// nothing but that.
async fn with_statistics(store: &PgStore, m: &Manager) -> Result<(), CliError> {
    precreate_with(m, 1000, |i| {
        TaskMeta::new(json!({"k": 1})).unique_key(format!("warm-{i}"))
    })
    .await?;
    vacuum(store).await
}

/// Runs the variant workloads the arguments ask for.
pub(super) async fn run(
    args: &BenchArgs,
    store: &PgStore,
    manager: &Manager,
    report: &mut Report,
) -> Result<(), CliError> {
    let n = args.tasks;
    if wants(args, "W1a_unique") {
        let m = fresh(store, manager, "w1a-unique").await?;
        with_statistics(store, &m).await?;
        reset_peak_rss();
        let start = Instant::now();
        for i in 0..n {
            let meta = TaskMeta::new(json!({"i": i})).unique_key(format!("key-{i}"));
            m.create_task("bench", meta).await?;
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "W1a_unique_enqueue_single_jobs_s",
            rate,
            format!("{n} tasks, one awaited call each, each with its own unique key"),
            Some("insert_c1"),
        );
        m.delete_queue("bench").await?;
    }
    if wants(args, "W1b_unique") {
        let m = fresh(store, manager, "w1b-unique").await?;
        with_statistics(store, &m).await?;
        reset_peak_rss();
        let start = Instant::now();
        precreate_with(&m, n, |i| {
            TaskMeta::new(json!({"k": 1})).unique_key(format!("key-{i}"))
        })
        .await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "W1b_unique_enqueue_batch_jobs_s",
            rate,
            format!("{n} tasks, 1,000 per call, each with its own unique key"),
            None,
        );
        report.add("W1b_unique_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }
    if wants(args, "W2_priority") {
        let c = args.concurrency.first().copied().unwrap_or(8);
        let m = fresh(store, manager, "w2-priority").await?;
        precreate_with(&m, n, |i| {
            TaskMeta::new(json!({"k": 1})).priority([-20, -10, 0, 10, 20][i % 5])
        })
        .await?;
        vacuum(store).await?;
        reset_peak_rss();
        let rate = drain(&m, n, c).await?;
        report.add(
            format!("W2_priority_drain_c{c}_jobs_s"),
            rate,
            format!("{n} tasks over 5 priorities, worker runtime, no-op handlers"),
            Some(&format!("claim_finish_1stmt_c{c}")),
        );
        m.delete_queue("bench").await?;
    }
    if wants(args, "W2_limited") {
        const C: usize = 32;
        // The same drain without prefetch on an unlimited queue: a queue at its
        // max_running cannot hold tasks ahead, so this separates what the limit costs from
        // what losing the prefetch costs.
        let m = fresh(store, manager, "w2-no-prefetch").await?;
        precreate(&m, n).await?;
        vacuum(store).await?;
        let rate = drain_with(&m, n, C, Some(0)).await?;
        report.add(
            format!("W2_no_prefetch_drain_c{C}_jobs_s"),
            rate,
            format!("{n} tasks, unlimited queue, concurrency {C}, prefetch 0, no-op handlers"),
            None,
        );
        m.delete_queue("bench").await?;
        let m = fresh(store, manager, "w2-limited").await?;
        m.update_queue(
            "bench",
            QueueMeta {
                max_running: Some(Some(C as i64)),
                ..Default::default()
            },
        )
        .await?;
        precreate(&m, n).await?;
        vacuum(store).await?;
        reset_peak_rss();
        let rate = drain(&m, n, C).await?;
        report.add(
            format!("W2_limited_drain_c{C}_jobs_s"),
            rate,
            format!(
                "{n} tasks, max_running {C}, worker runtime at concurrency {C}, no-op handlers"
            ),
            Some(&format!("claim_finish_1stmt_c{C}")),
        );
        m.delete_queue("bench").await?;
    }
    Ok(())
}
