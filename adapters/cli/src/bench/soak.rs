//! `soak`: speed over time, under vacuum pressure (issue 17). A steady producer and a worker
//! runtime (32 slots, 1 ms of work per task) run through three phases: `clean`,
//! `idle_in_tx` (another connection holds `BEGIN; SELECT txid_current();` open, so vacuum can
//! reclaim nothing), and `recovery`. Per phase it reports the completion rate, the claim
//! latency (create → handler start) p50/p99, the queue depth at the end, and the dead tuples
//! and size (tables + indexes) of pgqueue's tables. The queue's `ttl` is one minute, task
//! events are kept a minute, and the runtime's clean-up runs every 10 s, so retention is
//! bounded, as issue 17's targets assume. With `--soak-queues N` the producer spreads its
//! tasks over N queues and the one runtime serves them all, so each claim names several
//! queues (the shape of a worker binary with several handlers).

use super::latency::percentile;
use super::report::Report;
use super::{BenchArgs, backlog, drain, fresh};
use crate::error::CliError;
use pgqueue_app::{Manager, Runtime, RuntimeConfig, Worker};
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_postgres::PgStore;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The phases, in order.
const PHASES: [&str; 3] = ["clean", "idle_in_tx", "recovery"];

/// How often the soak's runtime deletes ended tasks past the queue's one-minute `ttl`.
const CLEANUP_PERIOD: Duration = Duration::from_secs(10);

/// How long the soak's runtime keeps task events: a minute, as the tasks' `ttl`, so that
/// the event log's retention is bounded within the soak too (the default, an hour, would
/// keep every event of a shorter soak and grow the tables for as long as it runs).
const EVENTS_RETENTION: Duration = Duration::from_secs(60);

/// What the soak is told to do.
pub(super) struct Soak<'a> {
    /// The database, for the idle transaction and the table statistics.
    pub url: &'a str,
    /// Tasks per second the producer creates.
    pub rate: f64,
    /// How long each phase lasts.
    pub durations: [Duration; 3],
    /// Table-level autovacuum on or off for the run.
    pub autovacuum: bool,
    /// The queues the producer spreads its tasks over, round robin; the first is `bench`.
    pub queues: Vec<String>,
}

/// The soak's queues: `bench`, then `bench-2` … `bench-<n>`.
fn queue_names(n: u32) -> Vec<String> {
    std::iter::once("bench".to_string())
        .chain((2..=n).map(|i| format!("bench-{i}")))
        .collect()
}

/// Who vacuums during the soak, for its notes: a table's `autovacuum_enabled` means nothing
/// while the server's `autovacuum` is off (the launcher visits no table then), and pgqueue's
/// own maintenance vacuums instead.
fn vacuum_mode(asked: bool, server: bool) -> &'static str {
    match (asked, server) {
        (true, true) => "on",
        (true, false) => {
            "off (asked on, but the server's autovacuum is off: pgqueue's maintenance vacuums)"
        }
        (false, _) => "off",
    }
}

/// Microseconds since the epoch: the create time a task carries to its handler.
fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, CliError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| CliError::Usage(format!("soak: cannot connect: {e}")))?;
    tokio::spawn(conn);
    Ok(client)
}

fn sql_error(e: tokio_postgres::Error) -> CliError {
    CliError::Usage(format!("soak: {e}"))
}

/// Dead tuples and size in MB of pgqueue's tables, in total and of the event log alone.
struct Tables {
    dead: i64,
    mb: f64,
    events_dead: i64,
    events_mb: f64,
}

async fn tables(client: &tokio_postgres::Client) -> Result<Tables, CliError> {
    let row = client
        .query_one(
            "SELECT coalesce(sum(n_dead_tup), 0)::bigint, \
                    coalesce(sum(pg_total_relation_size(relid)), 0)::bigint, \
                    coalesce(sum(n_dead_tup) FILTER (WHERE relname = 'task_events'), 0)::bigint, \
                    coalesce(sum(pg_total_relation_size(relid)) \
                      FILTER (WHERE relname = 'task_events'), 0)::bigint \
             FROM pg_stat_user_tables WHERE relname IN ('tasks', 'task_events', 'queues')",
            &[],
        )
        .await
        .map_err(sql_error)?;
    let mb = |bytes: i64| bytes as f64 / 1_048_576.0;
    Ok(Tables {
        dead: row.get(0),
        mb: mb(row.get(1)),
        events_dead: row.get(2),
        events_mb: mb(row.get(3)),
    })
}

/// Runs the soak on the bench queue of `m` and reports each phase.
pub(super) async fn run(m: &Manager, soak: Soak<'_>, report: &mut Report) -> Result<(), CliError> {
    let stats = connect(soak.url).await?;
    let asked = if soak.autovacuum { "on" } else { "off" };
    stats
        .batch_execute(&format!(
            "ALTER TABLE tasks SET (autovacuum_enabled = {asked}); \
             ALTER TABLE task_events SET (autovacuum_enabled = {asked})"
        ))
        .await
        .map_err(sql_error)?;
    let server: bool = stats
        .query_one("SELECT current_setting('autovacuum') = 'on'", &[])
        .await
        .map_err(sql_error)?
        .get(0);
    let setting = vacuum_mode(soak.autovacuum, server);
    if soak.autovacuum && !server {
        eprintln!("soak: autovacuum {setting}");
    }
    let phase = Arc::new(AtomicUsize::new(0));
    let done: Arc<Vec<AtomicU64>> = Arc::new(PHASES.iter().map(|_| AtomicU64::new(0)).collect());
    let latencies: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(vec![Vec::new(); PHASES.len()]));
    let mut worker = Worker::new(m.clone()).concurrency(32).name("bench@soak")?;
    for queue in &soak.queues {
        let (p, d, l) = (phase.clone(), done.clone(), latencies.clone());
        worker = worker.handle(queue, move |payload: Value| {
            let started = micros_now();
            let (p, d, l) = (p.clone(), d.clone(), l.clone());
            async move {
                let created = payload["t"].as_u64().unwrap_or(started);
                let i = p.load(Ordering::Relaxed).min(PHASES.len() - 1);
                if let Ok(mut l) = l.lock() {
                    l[i].push(started.saturating_sub(created) as f64 / 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                d[i].fetch_add(1, Ordering::Relaxed);
                Ok::<_, String>(Value::Null)
            }
        })?;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    // The background runtime, as a server runs it: lease rescue, clean-up, and the store's
    // maintenance, which vacuums when autovacuum is off.
    let (stop_runtime, runtime_stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::spawn(
        Runtime::new(
            m.clone(),
            RuntimeConfig {
                cleanup_period: CLEANUP_PERIOD,
                events_retention: EVENTS_RETENTION,
                ..RuntimeConfig::default()
            },
        )
        .run(async {
            let _ = runtime_stopped.await;
        }),
    );

    for (i, name) in PHASES.iter().enumerate() {
        phase.store(i, Ordering::Relaxed);
        // The idle transaction pins the cleanup horizon for the whole phase.
        let holder = if *name == "idle_in_tx" {
            let c = connect(soak.url).await?;
            c.batch_execute("BEGIN; SELECT txid_current();")
                .await
                .map_err(sql_error)?;
            Some(c)
        } else {
            None
        };
        let before = tables(&stats).await?;
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut created = 0u64;
        let mut next = soak.queues.iter().cycle();
        while start.elapsed() < soak.durations[i] {
            tick.tick().await;
            let due = (soak.rate * start.elapsed().as_secs_f64()) as u64;
            let k = due.saturating_sub(created).min(1000) as usize;
            if k > 0 {
                let t = micros_now();
                let queue = next.next().map_or("bench", String::as_str);
                m.create_tasks(queue, vec![TaskMeta::new(json!({ "t": t })); k])
                    .await?;
                created += k as u64;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let after = tables(&stats).await?;
        let depth = stats
            .query_one(
                "SELECT count(*) FROM tasks WHERE queue = ANY($2) AND namespace = $1 \
                 AND state IN ('new', 'retry')",
                &[&m.namespace().as_str(), &soak.queues],
            )
            .await
            .map_err(sql_error)?
            .get::<_, i64>(0);
        if let Some(c) = holder {
            c.batch_execute("ROLLBACK").await.map_err(sql_error)?;
        }
        let lat = latencies.lock().map(|l| l[i].clone()).unwrap_or_default();
        let spread = match soak.queues.len() {
            1 => String::new(),
            n => format!(" over {n} queues"),
        };
        let note = format!(
            "{:.0} s, producer {:.0}/s{spread}, autovacuum {setting}",
            secs, soak.rate
        );
        let rate = done[i].load(Ordering::Relaxed) as f64 / secs;
        report.add(format!("soak_{name}_jobs_s"), rate, &note, None);
        report.add(
            format!("soak_{name}_claim_p50_ms"),
            percentile(&lat, 0.5),
            &note,
            None,
        );
        report.add(
            format!("soak_{name}_claim_p99_ms"),
            percentile(&lat, 0.99),
            &note,
            None,
        );
        report.add(format!("soak_{name}_depth"), depth as f64, &note, None);
        report.add(
            format!("soak_{name}_dead_tuples"),
            after.dead as f64,
            format!(
                "{note}; {} at the start; {} of them in task_events",
                before.dead, after.events_dead
            ),
            None,
        );
        report.add(
            format!("soak_{name}_tables_mb"),
            after.mb,
            format!(
                "{note}; {:.1} MB at the start; task_events {:.1} MB",
                before.mb, after.events_mb
            ),
            None,
        );
    }
    let _ = stop.send(());
    let _ = running.await;
    let _ = stop_runtime.send(());
    let _ = runtime.await;
    stats
        .batch_execute(
            "ALTER TABLE tasks RESET (autovacuum_enabled); \
             ALTER TABLE task_events RESET (autovacuum_enabled)",
        )
        .await
        .map_err(sql_error)?;
    Ok(())
}

/// The soak as `pgqueue bench --workload soak` asks for it: the producer's rate from
/// `--soak-rate` or half a measured c32 drain, the phases from their flags.
pub(super) async fn from_args(
    store: &PgStore,
    manager: &Manager,
    args: &BenchArgs,
    url: &str,
    report: &mut Report,
) -> Result<(), CliError> {
    let rate = match args.soak_rate {
        Some(r) => r,
        None => {
            let m = fresh(store, manager, "soak-rate").await?;
            backlog(store, &m, 5_000).await?;
            let c32 = drain(&m, 5_000, 32).await?;
            m.delete_queue("bench").await?;
            c32 / 2.0
        }
    };
    let m = fresh(store, manager, "soak").await?;
    // Retention bounded as issue 17's target asks: ended tasks live a minute, and the
    // runtime's clean-up looks every 10 s (below).
    let queues = queue_names(args.soak_queues);
    for queue in &queues {
        m.register_queue(QueueMeta {
            queue: Some(queue.clone()),
            ttl: Some(pgqueue_domain::Duration::from_secs(60)),
            ..Default::default()
        })
        .await?;
    }
    let soak = Soak {
        url,
        rate: rate.max(1.0),
        durations: [
            args.soak_clean.to_std(),
            args.soak_idle.to_std(),
            args.soak_recovery.to_std(),
        ],
        autovacuum: args.soak_autovacuum == "on",
        queues: queues.clone(),
    };
    run(&m, soak, report).await?;
    for queue in &queues {
        m.delete_queue(queue).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::vacuum_mode;

    #[test]
    fn a_table_asked_to_autovacuum_on_a_server_without_it_says_so() {
        assert_eq!(vacuum_mode(true, true), "on");
        assert!(vacuum_mode(true, false).starts_with("off (asked on"));
        assert_eq!(vacuum_mode(false, true), "off");
        assert_eq!(vacuum_mode(false, false), "off");
    }
}
