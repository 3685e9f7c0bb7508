//! `pgqueue bench`: how fast pgqueue moves tasks through one PostgreSQL.
//!
//! Each workload runs in a fresh namespace of the given database and prints a table row and a
//! machine-readable line `RESULT<TAB>pgqueue<TAB><metric><TAB><value><TAB><note>`:
//! - `W1a_enqueue_single_jobs_s`: tasks created one awaited call at a time, one client;
//! - `W1b_enqueue_batch_jobs_s`: the same through `create_tasks`, 1,000 per call;
//! - `W2_drain_c{N}_jobs_s`: pre-created tasks drained by the worker runtime with no-op
//!   handlers at concurrency N, timed until the database counts all of them released;
//! - `W2_finished_drain_c{N}_jobs_s`: the first of those drains again, on an empty table and
//!   then with `--finished-rows` finished tasks in the same queue (the ratio shows whether
//!   finished rows cost the hot path anything);
//! - `W2_http_drain_c{N}_jobs_s`: the same through the REST API (retain + release over
//!   keep-alive connections) of a separate `pgqueue run` process, whose idle and peak memory
//!   are read too;
//! - `W2_http_batch_drain_c{N}_jobs_s`: the same with batch HTTP workers: `PUT /task?limit=100`,
//!   then one `PATCH /task` releasing what it got;
//! - `W2_backlog_drain_c{N}_jobs_s`, `W2_queues_drain_c32_jobs_s`: the drain behind a deep
//!   backlog, and over 1,000 queues (`depth.rs`);
//! - `W3_p50_ms`/`W3_p95_ms`/`W3_p99_ms`: idle workers (concurrency 8), tasks created at a
//!   steady rate; latency = handler start − create call issued;
//! - `*_peak_rss_mb`: the bench process's peak resident memory during each workload;
//! - `W1b_*_per_task`, `W2_c{N}_*_per_task`: WAL bytes and WAL records by kind (heap
//!   inserts, updates, HOT updates, row locks, B-tree inserts) per task (`wal.rs`).
//!
//! With `--ceiling`, pgbench first measures the database's own ceiling for the same shapes
//! (insert; one-statement claim-and-finish; claim and finish as two transactions) at the same
//! client counts, and each figure is also printed as a ratio of it.

mod churn;
mod depth;
mod http;
mod latency;

/// Tasks an HTTP batch worker retains per request in `W2_http_batch`.
const HTTP_BATCH: u32 = 100;
mod report;
mod soak;
mod variants;
mod wal;

use crate::error::CliError;
use clap::Args;
use pgqueue_app::{Manager, Worker};
use pgqueue_domain::{Page, QueueMeta, Status, TaskFilter, TaskMeta};
use pgqueue_ports::Store;
use pgqueue_postgres::{PgOptions, PgStore};
use report::{Report, peak_rss_mb, reset_peak_rss};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `pgqueue bench` flags.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// PostgreSQL URL (default: DATABASE_URL).
    #[arg(env = "DATABASE_URL")]
    pub url: Option<String>,
    /// Tasks per enqueue and drain workload.
    #[arg(long, default_value_t = 20_000)]
    pub tasks: usize,
    /// Worker concurrencies for the drain workload.
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    pub concurrency: Vec<usize>,
    /// HTTP workers for the HTTP drain.
    #[arg(long = "http-clients", default_value_t = 8)]
    pub http_clients: usize,
    /// Tasks per second created in the wake-up latency workload.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Tasks created in the wake-up latency workload.
    #[arg(long = "latency-tasks", default_value_t = 1000)]
    pub latency_tasks: usize,
    /// Queues of the W2_queues drain (20 tasks each).
    #[arg(long, default_value_t = 1000)]
    pub queues: usize,
    /// The worker runtime's prefetch in the W2 drain (default: the runtime's own, equal to
    /// the concurrency). A claim asks for up to concurrency + prefetch tasks, so
    /// `--concurrency 8 --prefetch 92` claims in batches of 100, the ceiling's
    /// `claim_finish_100` shape.
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Tasks left waiting in the queue behind the W2_backlog drain.
    #[arg(long = "backlog-rows", default_value_t = 1_000_000)]
    pub backlog_rows: usize,
    /// Finished tasks left in the table for the W2_finished drain.
    #[arg(long = "finished-rows", default_value_t = 1_000_000)]
    pub finished_rows: usize,
    /// Run only these workloads (W1a, W1b, W1a_unique, W1b_unique, W2, W2_priority,
    /// W2_limited, W2_backlog, W2_queues, W2_finished, W2_http, W2_http_batch, W3); default
    /// all but `soak` and `churn`, which run only when named.
    #[arg(long, value_delimiter = ',')]
    pub workload: Vec<String>,
    /// Run the HTTP workloads against this running `pgqueue run` (its API base URL, e.g.
    /// `http://10.0.0.5:8080/api`, serving the same database) instead of a child process.
    #[arg(long)]
    pub server: Option<String>,
    /// `soak`: tasks per second of its producer (default: half the measured c32 drain).
    #[arg(long = "soak-rate")]
    pub soak_rate: Option<f64>,
    /// `soak`: how long the clean phase lasts.
    #[arg(long = "soak-clean", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub soak_clean: pgqueue_domain::Duration,
    /// `soak`: how long the idle-in-transaction phase lasts (vacuum can reclaim nothing).
    #[arg(long = "soak-idle", default_value = "10m", value_parser = crate::cli::parse_duration)]
    pub soak_idle: pgqueue_domain::Duration,
    /// `soak`: how long the recovery phase lasts.
    #[arg(long = "soak-recovery", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub soak_recovery: pgqueue_domain::Duration,
    /// `churn`: how long tasks are created, drained and deleted before W1b and W2 run again.
    #[arg(long = "churn-duration", default_value = "1h", value_parser = crate::cli::parse_duration)]
    pub churn_duration: pgqueue_domain::Duration,
    /// `soak`: how many queues the producer spreads its tasks over (round robin), all served
    /// by the one worker runtime (which then claims naming several queues).
    #[arg(long = "soak-queues", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub soak_queues: u32,
    /// `soak`: autovacuum of pgqueue's tables during the run, `on` or `off`.
    #[arg(long = "soak-autovacuum", default_value = "on", value_parser = ["on", "off"])]
    pub soak_autovacuum: String,
    /// Measure the database's ceiling with pgbench first and print ratios to it.
    #[arg(long)]
    pub ceiling: bool,
    /// Seconds each pgbench ceiling run lasts.
    #[arg(long = "ceiling-seconds", default_value_t = 10)]
    pub ceiling_seconds: u32,
    /// Pooled connections of the benchmarked store.
    #[arg(long = "pool-size", default_value_t = 16)]
    pub pool_size: u32,
    /// Keep statements prepared (`--pg.prepared=false` measures the mode for poolers such
    /// as PgBouncer in transaction mode; see `run --pg.prepared`).
    #[arg(long = "pg.prepared", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pg_prepared: bool,
    /// A direct URL for LISTEN and migrations while URL goes through a pooler (see `run
    /// --pg.listen-url`).
    #[arg(long = "pg.listen-url")]
    pub pg_listen_url: Option<String>,
}

/// Whether workload `name` was asked for by name (the long ones run only then).
fn named(args: &BenchArgs, name: &str) -> bool {
    args.workload.iter().any(|w| w.eq_ignore_ascii_case(name))
}

fn wants(args: &BenchArgs, name: &str) -> bool {
    args.workload.is_empty() || args.workload.iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// A fresh namespace with one queue, so runs never see each other's tasks.
async fn fresh(store: &PgStore, manager: &Manager, label: &str) -> Result<Manager, CliError> {
    let ns = format!(
        "bench-{}-{}-{}",
        label.to_lowercase().replace('_', "-"),
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let m = manager.with_namespace(&ns)?;
    // Every workload starts on a vacuumed table, not among the previous one's dead rows.
    vacuum(store).await?;
    m.register_queue(QueueMeta {
        queue: Some("bench".into()),
        ..Default::default()
    })
    .await?;
    Ok(m)
}

async fn released(m: &Manager) -> Result<u64, CliError> {
    let filter = TaskFilter {
        status: Some(Status::Released),
        page: Page::new(None, Some(0)),
        ..Default::default()
    };
    Ok(m.list_tasks(&filter).await?.count)
}

async fn precreate(m: &Manager, n: usize) -> Result<(), CliError> {
    precreate_with(m, n, |_| TaskMeta::new(json!({"k": 1}))).await
}

/// Creates `n` tasks made by `meta(i)`, 1,000 per call.
async fn precreate_with(
    m: &Manager,
    n: usize,
    meta: impl Fn(usize) -> TaskMeta,
) -> Result<(), CliError> {
    let mut done = 0;
    while done < n {
        let k = (n - done).min(1000);
        m.create_tasks("bench", (done..done + k).map(&meta).collect())
            .await?;
        done += k;
    }
    Ok(())
}

/// Creates the `n` tasks a drain will work through, then vacuums and analyses the table, as
/// a running server's maintenance (or autovacuum) does within seconds of such a burst:
/// otherwise the drain would be timed on plans made for the table before the burst, and
/// among the dead rows of the workloads before it.
async fn backlog(store: &PgStore, m: &Manager, n: usize) -> Result<(), CliError> {
    precreate(m, n).await?;
    vacuum(store).await
}

/// Vacuums and analyses the task table, as a running server's maintenance does within
/// seconds of a burst (and as pgbench does before its runs).
async fn vacuum(store: &PgStore) -> Result<(), CliError> {
    store
        .maintain(true)
        .await
        .map_err(pgqueue_app::Error::from)?;
    Ok(())
}

/// Runs the benchmark and prints its results.
pub async fn run(args: BenchArgs) -> Result<(), CliError> {
    let url = args
        .url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            CliError::Usage("bench needs a database URL (argument or DATABASE_URL)".into())
        })?;
    let mut report = Report::default();
    if args.ceiling {
        report.ceiling = crate::ceiling::measure(&url, &args.concurrency, args.ceiling_seconds)?;
        for (k, v) in &report.ceiling {
            println!("RESULT\tpgbench\t{k}\t{v:.2}\tceiling, pgbench on a scratch table");
        }
    }
    let options = PgOptions {
        pool_size: args.pool_size.max(2),
        prepared: args.pg_prepared,
        listen_url: args.pg_listen_url.clone(),
        ..Default::default()
    };
    let store = Arc::new(PgStore::connect(&url, options).await?);
    let manager = Manager::new(store.clone());
    let n = args.tasks;
    let wal = wal::Wal::connect(args.pg_listen_url.as_deref().unwrap_or(&url)).await?;

    if wants(&args, "W1a") {
        let m = fresh(&store, &manager, "w1a").await?;
        reset_peak_rss();
        let start = Instant::now();
        for i in 0..n {
            m.create_task("bench", TaskMeta::new(json!({"i": i})))
                .await?
                .into_task();
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "W1a_enqueue_single_jobs_s",
            rate,
            format!("{n} tasks, one awaited call each"),
            Some("insert_c1"),
        );
        report.add("W1a_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W1b") {
        let m = fresh(&store, &manager, "w1b").await?;
        reset_peak_rss();
        let from = wal.mark().await?;
        let start = Instant::now();
        precreate(&m, n).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "W1b_enqueue_batch_jobs_s",
            rate,
            format!("{n} tasks, 1,000 per call"),
            None,
        );
        wal.report(&from, "W1b", n, &mut report).await?;
        report.add("W1b_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W2") {
        for &c in &args.concurrency {
            let m = fresh(&store, &manager, &format!("w2-c{c}")).await?;
            backlog(&store, &m, n).await?;
            reset_peak_rss();
            let from = wal.mark().await?;
            let rate = drain_with(&m, n, c, args.prefetch).await?;
            let prefetch = args.prefetch.unwrap_or(c);
            report.add(
                format!("W2_drain_c{c}_jobs_s"),
                rate,
                format!("{n} tasks, worker runtime, prefetch {prefetch}, no-op handlers"),
                Some(&format!("claim_finish_100_c{c}")),
            );
            wal.report(&from, &format!("W2_c{c}"), n, &mut report)
                .await?;
            report.add(format!("W2_c{c}_peak_rss_mb"), peak_rss_mb(), "", None);
            m.delete_queue("bench").await?;
        }
    }

    if wants(&args, "W2_finished") {
        let c = args.concurrency.first().copied().unwrap_or(8);
        let rows = args.finished_rows;
        let m = fresh(&store, &manager, "w2-finished").await?;
        backlog(&store, &m, n).await?;
        let empty = drain(&m, n, c).await?;
        report.add(
            format!("W2_finished_empty_c{c}_jobs_s"),
            empty,
            format!("{n} tasks, worker runtime, table without finished rows"),
            None,
        );
        // The finished rows go into the same queue as the work, vacuumed and analysed as
        // autovacuum would leave them.
        let finished_since = std::time::Instant::now();
        let bench = pgqueue_domain::QueueName::parse("bench").map_err(pgqueue_app::Error::from)?;
        pgqueue_postgres::support::insert_released(&store, m.namespace(), &bench, rows as u64)
            .await?;
        tracing::info!(
            rows,
            secs = finished_since.elapsed().as_secs(),
            "finished rows in place"
        );
        backlog(&store, &m, n).await?;
        let full = drain(&m, n, c).await?;
        report.add(
            format!("W2_finished_drain_c{c}_jobs_s"),
            full,
            format!(
                "{n} tasks with {rows} finished tasks in the queue; {:.2}x of the empty table",
                full / empty
            ),
            None,
        );
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W2_http") {
        let c = args.http_clients.max(1);
        let m = fresh(&store, &manager, "w2-http").await?;
        backlog(&store, &m, n).await?;
        let server =
            http::Server::for_bench(args.server.as_deref(), &url, m.namespace().as_str()).await?;
        // Idle: started, connected, migrations checked, nothing asked of it yet.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = server.rss_mb();
        reset_peak_rss();
        let rate = http::drain(&server.base, n, c).await?;
        report.add(
            format!("W2_http_drain_c{c}_jobs_s"),
            rate,
            format!("{n} tasks, {c} HTTP workers (retain + release), `pgqueue run` process"),
            Some(&format!("claim_finish_2tx_c{c}")),
        );
        report.add(
            "W2_http_server_idle_rss_mb",
            idle,
            "`pgqueue run` on PostgreSQL, before the drain",
            None,
        );
        report.add(
            "W2_http_server_peak_rss_mb",
            server.peak_rss_mb(),
            "`pgqueue run`, peak through the drain",
            None,
        );
        report.add(
            "W2_http_clients_peak_rss_mb",
            peak_rss_mb(),
            "the bench process (HTTP clients)",
            None,
        );
        drop(server);
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W2_http_batch") {
        let c = args.http_clients.max(1);
        let m = fresh(&store, &manager, "w2-http-batch").await?;
        backlog(&store, &m, n).await?;
        let server =
            http::Server::for_bench(args.server.as_deref(), &url, m.namespace().as_str()).await?;
        let rate = http::drain_batch(&server.base, n, c, HTTP_BATCH).await?;
        report.add(
            format!("W2_http_batch_drain_c{c}_jobs_s"),
            rate,
            format!(
                "{n} tasks, {c} HTTP workers retaining up to {HTTP_BATCH} per request and releasing them in one request"
            ),
            Some(&format!("claim_finish_2tx_c{c}")),
        );
        drop(server);
        m.delete_queue("bench").await?;
    }

    variants::run(&args, &store, &manager, &mut report).await?;
    depth::run(&args, &store, &manager, &mut report).await?;

    if wants(&args, "W3") {
        let m = fresh(&store, &manager, "w3").await?;
        reset_peak_rss();
        let lat = latency::wakeup_latency(&m, args.latency_tasks, args.rate.max(1)).await?;
        let note = format!(
            "{} tasks at {}/s, 8 idle workers",
            args.latency_tasks, args.rate
        );
        for (name, p) in [
            ("W3_p50_ms", 0.50),
            ("W3_p95_ms", 0.95),
            ("W3_p99_ms", 0.99),
        ] {
            report.add(name, latency::percentile(&lat, p), note.clone(), None);
        }
        report.add("W3_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }

    // Only when asked for: they last 20 minutes and an hour by default.
    if named(&args, "soak") {
        soak::from_args(&store, &manager, &args, &url, &mut report).await?;
    }
    if named(&args, "churn") {
        churn::run(&store, &manager, &args, &mut report).await?;
    }

    report.print_table();
    store.close();
    Ok(())
}

/// Drains the `n` tasks waiting in queue `bench` with the worker runtime at concurrency `c`
/// and no-op handlers; tasks/s from start until the database counts all of them released.
async fn drain(m: &Manager, n: usize, c: usize) -> Result<f64, CliError> {
    drain_with(m, n, c, None).await
}

/// [`drain`] with the runtime's prefetch set (`None`: its default, = concurrency).
async fn drain_with(
    m: &Manager,
    n: usize,
    c: usize,
    prefetch: Option<usize>,
) -> Result<f64, CliError> {
    drain_queues(m, n, c, prefetch, &["bench".to_string()]).await
}

/// Drains `n` tasks (or more: a deeper backlog is left waiting, less what was prefetched) of
/// `queues` with one no-op handler per queue; tasks/s from start until `n` are released.
async fn drain_queues(
    m: &Manager,
    n: usize,
    c: usize,
    prefetch: Option<usize>,
    queues: &[String],
) -> Result<f64, CliError> {
    let target = released(m).await? + n as u64;
    let handled = Arc::new(AtomicUsize::new(0));
    let mut worker = Worker::new(m.clone()).concurrency(c);
    if let Some(p) = prefetch {
        worker = worker.prefetch(p);
    }
    let mut worker = worker.name(&format!("bench@c{c}"))?;
    for q in queues {
        let counter = handled.clone();
        worker = worker.handle(q, move |_payload: Value| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, String>(Value::Null) }
        })?;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let run = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    // Once every handler has started, stop the runtime: it returns when each job's release
    // is durable. Counting released rows in the database instead would time a scan of every
    // finished row along with the drain.
    while handled.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let _ = stop.send(());
    let done = run
        .await
        .map_err(|e| CliError::Usage(format!("worker runtime failed: {e}")))??;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    // Checked after the clock stopped: every task is released, none abandoned.
    let counted = released(m).await?;
    if done.succeeded < n as u64 || counted < target {
        return Err(CliError::Usage(format!(
            "drain released {} of {n} tasks ({counted} of {target} counted in the database)",
            done.succeeded
        )));
    }
    Ok(rate)
}
