//! Workloads that ask whether the drain holds up with depth, each beside its plain form in
//! the same run: a deep backlog in the queue (`W2_backlog`: the c8 drain of `--tasks` with
//! `--backlog-rows` more waiting) and many queues (`W2_queues`: `--queues` queues × 20 tasks,
//! drained at c32 by one runtime that handles them all).

use super::report::{Report, reset_peak_rss};
use super::{BenchArgs, backlog, drain_queues, fresh, vacuum, wants};
use crate::error::CliError;
use pgqueue_app::Manager;
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_postgres::PgStore;
use serde_json::json;

/// Tasks in each queue of `W2_queues`.
const PER_QUEUE: usize = 20;

/// Runs the depth workloads the arguments ask for.
pub(super) async fn run(
    args: &BenchArgs,
    store: &PgStore,
    manager: &Manager,
    report: &mut Report,
) -> Result<(), CliError> {
    let n = args.tasks;
    if wants(args, "W2_backlog") {
        let c = args.concurrency.first().copied().unwrap_or(8);
        let m = fresh(store, manager, "w2-backlog").await?;
        let deep = args.backlog_rows;
        backlog(store, &m, deep + n).await?;
        reset_peak_rss();
        let rate = drain_queues(&m, n, c, None, &["bench".to_string()]).await?;
        report.add(
            format!("W2_backlog_drain_c{c}_jobs_s"),
            rate,
            format!(
                "{n} of {} waiting tasks in one queue, worker runtime, no-op handlers",
                deep + n
            ),
            None,
        );
        m.delete_queue("bench").await?;
    }
    if wants(args, "W2_queues") {
        const C: usize = 32;
        let queues = args.queues.max(1);
        let m = fresh(store, manager, "w2-queues").await?;
        let names: Vec<String> = (0..queues).map(|i| format!("q{i:04}")).collect();
        for q in &names {
            m.register_queue(QueueMeta {
                queue: Some(q.clone()),
                ..Default::default()
            })
            .await?;
            m.create_tasks(
                q,
                (0..PER_QUEUE)
                    .map(|_| TaskMeta::new(json!({"k": 1})))
                    .collect(),
            )
            .await?;
        }
        vacuum(store).await?;
        reset_peak_rss();
        let total = queues * PER_QUEUE;
        let rate = drain_queues(&m, total, C, None, &names).await?;
        report.add(
            format!("W2_queues_drain_c{C}_jobs_s"),
            rate,
            format!(
                "{queues} queues x {PER_QUEUE} tasks, one runtime handling all of them at c{C}"
            ),
            None,
        );
        for q in &names {
            m.delete_queue(q).await?;
        }
        m.delete_queue("bench").await?;
    }
    Ok(())
}
