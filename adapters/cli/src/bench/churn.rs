//! `churn`: whether speed survives hours of create → drain → delete (index bloat). W1b (batch
//! create) and the c8 W2 drain run on a fresh namespace, then for `--churn-duration` a worker
//! runtime drains batches of 1,000 created tasks and each batch is deleted once released (as
//! the queue's clean-up would), beside the background runtime (its maintenance vacuums when
//! autovacuum is off, as a server's does), then W1b and W2 run again. Reports both runs, the tasks
//! churned and the after/before ratios (target: ≥ 0.9).

use super::report::Report;
use super::{BenchArgs, backlog, drain, fresh, precreate};
use crate::error::CliError;
use pgqueue_app::{Manager, Runtime, RuntimeConfig};
use pgqueue_domain::Status;
use pgqueue_postgres::PgStore;
use std::time::Instant;

/// Tasks per churn batch.
const BATCH: usize = 1_000;
/// Concurrency of the churn's drains and of the W2 it compares.
const WORKERS: usize = 8;

/// W1b and W2 c8 on fresh namespaces: (create tasks/s, drain tasks/s).
async fn measure(
    store: &PgStore,
    manager: &Manager,
    label: &str,
    n: usize,
) -> Result<(f64, f64), CliError> {
    let m = fresh(store, manager, &format!("churn-w1b-{label}")).await?;
    let start = Instant::now();
    precreate(&m, n).await?;
    let create = n as f64 / start.elapsed().as_secs_f64();
    m.delete_queue("bench").await?;
    let m = fresh(store, manager, &format!("churn-w2-{label}")).await?;
    backlog(store, &m, n).await?;
    let drained = drain(&m, n, WORKERS).await?;
    m.delete_queue("bench").await?;
    Ok((create, drained))
}

/// Runs the churn workload and reports it.
pub(super) async fn run(
    store: &PgStore,
    manager: &Manager,
    args: &BenchArgs,
    report: &mut Report,
) -> Result<(), CliError> {
    let n = args.tasks;
    let (create_before, drain_before) = measure(store, manager, "before", n).await?;
    let m = fresh(store, manager, "churn").await?;
    // The background runtime runs beside the churn, as in a server: its maintenance vacuums
    // the task table when autovacuum is off. Without it every claim of the churn walked the
    // dead entries of all the tasks claimed so far (its drain fell to a third in 30 min),
    // which measured a database nobody runs.
    let (stop_runtime, runtime_stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::spawn(
        Runtime::new(m.clone(), RuntimeConfig::default()).run(async {
            let _ = runtime_stopped.await;
        }),
    );
    let until = Instant::now() + args.churn_duration.to_std();
    let mut churned = 0usize;
    while Instant::now() < until {
        precreate(&m, BATCH).await?;
        drain(&m, BATCH, WORKERS).await?;
        m.purge_tasks(Some("bench"), &[Status::Released]).await?;
        churned += BATCH;
    }
    let _ = stop_runtime.send(());
    let _ = runtime.await;
    m.delete_queue("bench").await?;
    let (create_after, drain_after) = measure(store, manager, "after", n).await?;
    let span = humantime::format_duration(args.churn_duration.to_std());
    report.add(
        "churn_tasks",
        churned as f64,
        format!("created, drained and deleted in {span}"),
        None,
    );
    for (name, before, after) in [
        ("W1b", create_before, create_after),
        ("W2_c8", drain_before, drain_after),
    ] {
        report.add(format!("churn_{name}_before_jobs_s"), before, "fresh", None);
        report.add(
            format!("churn_{name}_after_jobs_s"),
            after,
            format!("after {span} of churn"),
            None,
        );
        report.add(
            format!("churn_{name}_ratio"),
            after / before.max(f64::MIN_POSITIVE),
            "after / before (target >= 0.9)",
            None,
        );
    }
    Ok(())
}
