//! `pgqueue bench`: how fast pgqueue moves tasks through one PostgreSQL.
//!
//! Each workload runs in a fresh namespace of the given database and prints a table row and a
//! machine-readable line `RESULT<TAB>pgqueue<TAB><metric><TAB><value><TAB><note>`:
//! - `W1a_enqueue_single_jobs_s`: tasks created one awaited call at a time, one client;
//! - `W1b_enqueue_batch_jobs_s`: the same through `create_tasks`, 1,000 per call;
//! - `W2_drain_c{N}_jobs_s`: pre-created tasks drained by the worker runtime with no-op
//!   handlers at concurrency N, timed until the database counts all of them released;
//! - `W2_http_drain_c{N}_jobs_s`: the same through the REST API (retain + release over
//!   keep-alive connections) against an in-process server;
//! - `W3_p50_ms`/`W3_p95_ms`/`W3_p99_ms`: idle workers (concurrency 8), tasks created at a
//!   steady rate; latency = handler start − create call issued;
//! - `*_peak_rss_mb`: the process's peak resident memory during each workload.
//!
//! With `--ceiling`, pgbench first measures the database's own ceiling for the same shapes
//! (insert; one-statement claim-and-finish; claim and finish as two transactions) at the same
//! client counts, and each figure is also printed as a ratio of it.

use crate::error::CliError;
use clap::Args;
use pgqueue_app::{Manager, Worker};
use pgqueue_domain::{Page, QueueMeta, Status, TaskFilter, TaskMeta};
use pgqueue_postgres::{PgOptions, PgStore};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    /// Run only these workloads (W1a, W1b, W2, W2_http, W3); default all.
    #[arg(long, value_delimiter = ',')]
    pub workload: Vec<String>,
    /// Measure the database's ceiling with pgbench first and print ratios to it.
    #[arg(long)]
    pub ceiling: bool,
    /// Seconds each pgbench ceiling run lasts.
    #[arg(long = "ceiling-seconds", default_value_t = 10)]
    pub ceiling_seconds: u32,
    /// Pooled connections of the benchmarked store.
    #[arg(long = "pool-size", default_value_t = 16)]
    pub pool_size: u32,
}

/// One measured figure.
struct Figure {
    metric: String,
    value: f64,
    note: String,
}

/// Collects figures and prints them as they come.
#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    ceiling: BTreeMap<String, f64>,
}

impl Report {
    fn add(
        &mut self,
        metric: impl Into<String>,
        value: f64,
        note: impl Into<String>,
        ceiling_key: Option<&str>,
    ) {
        let metric = metric.into();
        let mut note = note.into();
        if let Some(c) = ceiling_key.and_then(|k| self.ceiling.get(k)) {
            note = format!(
                "{note}; {:.2}x of pgbench {} ({c:.0}/s)",
                value / c,
                ceiling_key.unwrap_or_default()
            );
        }
        println!("RESULT\tpgqueue\t{metric}\t{value:.2}\t{note}");
        self.figures.push(Figure {
            metric,
            value,
            note,
        });
    }

    fn print_table(&self) {
        println!("\n{:<34} {:>12}  note", "metric", "value");
        for f in &self.figures {
            println!("{:<34} {:>12.2}  {}", f.metric, f.value, f.note);
        }
    }
}

/// Peak resident memory since the last reset, in MiB (Linux; 0 elsewhere).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn wants(args: &BenchArgs, name: &str) -> bool {
    args.workload.is_empty() || args.workload.iter().any(|w| w.eq_ignore_ascii_case(name))
}

/// A fresh namespace with one queue, so runs never see each other's tasks.
async fn fresh(manager: &Manager, label: &str) -> Result<Manager, CliError> {
    let ns = format!(
        "bench-{}-{}-{}",
        label.to_lowercase().replace('_', "-"),
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let m = manager.with_namespace(&ns)?;
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
    let mut left = n;
    while left > 0 {
        let k = left.min(1000);
        m.create_tasks("bench", vec![TaskMeta::new(json!({"k": 1})); k])
            .await?;
        left -= k;
    }
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
        ..Default::default()
    };
    let store = Arc::new(PgStore::connect(&url, options).await?);
    let manager = Manager::new(store.clone());
    let n = args.tasks;

    if wants(&args, "W1a") {
        let m = fresh(&manager, "w1a").await?;
        reset_peak_rss();
        let start = Instant::now();
        for i in 0..n {
            m.create_task("bench", TaskMeta::new(json!({"i": i})))
                .await?;
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
        let m = fresh(&manager, "w1b").await?;
        reset_peak_rss();
        let start = Instant::now();
        precreate(&m, n).await?;
        let rate = n as f64 / start.elapsed().as_secs_f64();
        report.add(
            "W1b_enqueue_batch_jobs_s",
            rate,
            format!("{n} tasks, 1,000 per call"),
            None,
        );
        report.add("W1b_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W2") {
        for &c in &args.concurrency {
            let m = fresh(&manager, &format!("w2-c{c}")).await?;
            precreate(&m, n).await?;
            reset_peak_rss();
            let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = handled.clone();
            let worker = Worker::new(m.clone())
                .concurrency(c)
                .name(&format!("bench@c{c}"))?
                .handle("bench", move |_payload: Value| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async { Ok::<_, String>(Value::Null) }
                })?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let start = Instant::now();
            let run = tokio::spawn(worker.run(async {
                let _ = stopped.await;
            }));
            // Counting in the database is a scan: do it only once every handler has run, so
            // the measurement does not compete with the workload for the database's CPU.
            while handled.load(std::sync::atomic::Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            while released(&m).await? < n as u64 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            let _ = stop.send(());
            let _ = run.await;
            report.add(
                format!("W2_drain_c{c}_jobs_s"),
                rate,
                format!("{n} tasks, worker runtime, no-op handlers"),
                Some(&format!("claim_finish_1stmt_c{c}")),
            );
            report.add(format!("W2_c{c}_peak_rss_mb"), peak_rss_mb(), "", None);
            m.delete_queue("bench").await?;
        }
    }

    if wants(&args, "W2_http") {
        let c = args.http_clients.max(1);
        let m = fresh(&manager, "w2-http").await?;
        precreate(&m, n).await?;
        reset_peak_rss();
        let rate = http_drain(&m, n, c).await?;
        report.add(
            format!("W2_http_drain_c{c}_jobs_s"),
            rate,
            format!("{n} tasks, {c} HTTP workers (retain + release)"),
            Some(&format!("claim_finish_2tx_c{c}")),
        );
        report.add(
            "W2_http_peak_rss_mb",
            peak_rss_mb(),
            "server and clients in one process",
            None,
        );
        m.delete_queue("bench").await?;
    }

    if wants(&args, "W3") {
        let m = fresh(&manager, "w3").await?;
        reset_peak_rss();
        let lat = wakeup_latency(&m, args.latency_tasks, args.rate.max(1)).await?;
        let note = format!(
            "{} tasks at {}/s, 8 idle workers",
            args.latency_tasks, args.rate
        );
        for (name, p) in [
            ("W3_p50_ms", 0.50),
            ("W3_p95_ms", 0.95),
            ("W3_p99_ms", 0.99),
        ] {
            report.add(name, percentile(&lat, p), note.clone(), None);
        }
        report.add("W3_peak_rss_mb", peak_rss_mb(), "", None);
        m.delete_queue("bench").await?;
    }

    report.print_table();
    store.close();
    Ok(())
}

/// The p-th percentile (0..1) of `values`, in the same unit.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)]
}

/// Drains the queue through an in-process HTTP server with `clients` HTTP workers.
async fn http_drain(m: &Manager, n: usize, clients: usize) -> Result<f64, CliError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pgqueue_http::serve(
        listener,
        m.clone(),
        pgqueue_http::HttpConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://{addr}/api");
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..clients {
        let client = pgqueue_client::Client::new(&base)?;
        workers.push(tokio::spawn(async move {
            let name = format!("http@{w}");
            let mut done = 0usize;
            loop {
                match client.retain_task(&name, &["bench"]).await? {
                    Some(t) => {
                        client
                            .release_task(
                                t.id,
                                pgqueue_client::Release::success(None).by(name.clone()),
                            )
                            .await?;
                        done += 1;
                    }
                    None => return Ok::<usize, pgqueue_client::ClientError>(done),
                }
            }
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w
            .await
            .map_err(|e| CliError::Usage(format!("HTTP worker failed: {e}")))??;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    if total != n {
        return Err(CliError::Usage(format!(
            "HTTP drain released {total} of {n} tasks"
        )));
    }
    Ok(rate)
}

/// Creates `count` tasks at `rate`/s for idle workers; returns each task's wake-up latency in ms.
async fn wakeup_latency(m: &Manager, count: usize, rate: u32) -> Result<Vec<f64>, CliError> {
    let issued: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; count]));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let (iss, lat) = (issued.clone(), latencies.clone());
    let worker = Worker::new(m.clone())
        .concurrency(8)
        .name("bench@latency")?
        .handle("bench", move |payload: Value| {
            let started = Instant::now();
            let (iss, lat) = (iss.clone(), lat.clone());
            async move {
                let k = payload["k"].as_u64().unwrap_or(0) as usize;
                let at = iss
                    .lock()
                    .map(|v| v.get(k).copied().flatten())
                    .unwrap_or(None);
                if let (Some(at), Ok(mut l)) = (at, lat.lock()) {
                    l.push(started.saturating_duration_since(at).as_secs_f64() * 1000.0);
                }
                Ok::<_, String>(Value::Null)
            }
        })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await; // let the workers go idle
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for k in 0..count {
        tick.tick().await;
        if let Ok(mut v) = issued.lock() {
            v[k] = Some(Instant::now());
        }
        m.create_task("bench", TaskMeta::new(json!({"k": k})))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().map(|l| l.len()).unwrap_or(0) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    let _ = run.await;
    let out = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
