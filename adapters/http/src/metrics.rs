//! Prometheus metrics: the `queue_tasks` gauge plus task and HTTP counters.
//!
//! Each server owns a [`prometheus::Registry`] rather than using the global one, so several
//! servers in one process (tests) never share or clash. Task counters are fed by the
//! [`pgqueue_app::Observer`] hooks the Manager calls; the `queue_tasks` gauge is computed at
//! scrape time from storage, in a fresh gauge per scrape, so a deleted queue disappears and a
//! scrape never fails on a label set seen before.

use crate::error::HttpError;
use pgqueue_app::{Manager, Observer};
use pgqueue_domain::{Limit, Namespace, QueueName, State, Task};
use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The content type of the Prometheus text format (version 0.0.4).
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of the retain-to-release histogram: from 10 ms to an hour (a task's default ttl).
const RUN_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The metrics of one server. Cheap to clone; clones feed the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    created: IntCounterVec,
    retained: IntCounterVec,
    released: IntCounterVec,
    failed: IntCounterVec,
    cancelled: IntCounterVec,
    retried: IntCounterVec,
    deleted: IntCounterVec,
    limited: IntCounterVec,
    run_seconds: HistogramVec,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Result<Self, HttpError> {
        let registry = Registry::new();
        let task_labels = &["namespace", "queue"];
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, HttpError> {
            let c = IntCounterVec::new(Opts::new(name, help), task_labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let created = counter("pgqueue_tasks_created_total", "Tasks created")?;
        let retained = counter("pgqueue_tasks_retained_total", "Tasks retained by a worker")?;
        let released = counter(
            "pgqueue_tasks_released_total",
            "Tasks released successfully",
        )?;
        let failed = counter(
            "pgqueue_tasks_failed_total",
            "Task attempts released as failures (retried or failed for good)",
        )?;
        let cancelled = counter(
            "pgqueue_tasks_cancelled_total",
            "Tasks cancelled by an operator (ended at once, or asked to stop)",
        )?;
        let retried = counter(
            "pgqueue_tasks_retried_total",
            "Ended tasks retried by an operator (one by one or in a redrive)",
        )?;
        let deleted = counter(
            "pgqueue_tasks_deleted_total",
            "Tasks deleted by an operator (one by one or purged from a queue)",
        )?;
        let limited = IntCounterVec::new(
            Opts::new(
                "pgqueue_retains_limited_total",
                "Retains that got fewer tasks than asked because of a queue's max_running or rate",
            ),
            &["namespace", "queue", "limit"],
        )?;
        registry.register(Box::new(limited.clone()))?;
        let run_seconds = HistogramVec::new(
            HistogramOpts::new(
                "pgqueue_task_run_seconds",
                "Seconds from retain to release of tasks that ended (released or failed)",
            )
            .buckets(RUN_BUCKETS.to_vec()),
            &["namespace", "queue", "status"],
        )?;
        registry.register(Box::new(run_seconds.clone()))?;
        let requests = IntCounterVec::new(
            Opts::new(
                "pgqueue_http_requests_total",
                "HTTP requests by method, route pattern and status",
            ),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "pgqueue_http_request_duration_seconds",
                "HTTP request latency by method, route pattern and status (SSE: until the stream starts)",
            ),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                created,
                retained,
                released,
                failed,
                cancelled,
                retried,
                deleted,
                limited,
                run_seconds,
                requests,
                latency,
            }),
        })
    }

    /// This set as a Manager observer: `manager.with_observer(metrics.observer())`.
    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(self.clone())
    }

    /// The registry, to add an embedder's own metrics to the same scrape.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Counts one answered request.
    pub(crate) fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.inner.requests.with_label_values(&labels).inc();
        self.inner
            .latency
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
    }

    /// The text exposition: this registry plus `queue_tasks` counted now.
    pub(crate) async fn render(&self, manager: &Manager) -> Result<String, HttpError> {
        let gauge = GaugeVec::new(
            Opts::new("queue_tasks", "Number of tasks in each queue by status"),
            &["namespace", "queue", "status"],
        )?;
        let ns = manager.namespace().as_str();
        let counts = manager.queue_statuses().await?;
        for count in &counts {
            gauge
                .with_label_values(&[ns, count.queue.as_str(), count.status.as_str()])
                .set(count.count as f64);
        }
        let live: HashSet<&str> = counts.iter().map(|c| c.queue.as_str()).collect();
        self.forget_queues_except(ns, &live);
        let paused = GaugeVec::new(
            Opts::new("queue_paused", "1 while the queue is paused, else 0"),
            &["namespace", "queue"],
        )?;
        let mut offset = 0;
        loop {
            let page = manager
                .list_queues(pgqueue_domain::Page::new(Some(offset), None))
                .await?;
            for q in &page.items {
                paused
                    .with_label_values(&[ns, q.name.as_str()])
                    .set(if q.paused_at.is_some() { 1.0 } else { 0.0 });
            }
            offset += page.items.len() as u64;
            if page.items.is_empty() || offset >= page.count {
                break;
            }
        }
        let mode = prometheus::Gauge::new(
            "pgqueue_notify_mode",
            "1 while wake-ups come from LISTEN/NOTIFY, 0 while the server polls for them",
        )?;
        mode.set(if manager.notified() { 1.0 } else { 0.0 });
        let mut families = self.inner.registry.gather();
        families.extend(gauge.collect());
        families.extend(paused.collect());
        families.extend(mode.collect());
        // The encoder refuses a family without samples (no queue yet).
        families.retain(|f| !f.get_metric().is_empty());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| HttpError::Unavailable(e.to_string()))
    }
}

impl Metrics {
    /// Drops the series of this namespace's queues that no longer exist, so that a scrape
    /// does not grow with queue churn (queues created, used and deleted by the thousand).
    /// Done at scrape time because the queue may have been deleted through another server.
    fn forget_queues_except(&self, ns: &str, live: &HashSet<&str>) {
        let i = &self.inner;
        let counters = [
            &i.created,
            &i.retained,
            &i.released,
            &i.failed,
            &i.cancelled,
            &i.retried,
            &i.deleted,
        ];
        let families = counters
            .iter()
            .flat_map(|c| c.collect())
            .chain(i.run_seconds.collect())
            .chain(i.limited.collect());
        let mut stale: Vec<Vec<String>> = Vec::new();
        for family in families {
            for metric in family.get_metric() {
                let values: Vec<String> = metric
                    .get_label()
                    .iter()
                    .map(|l| l.value().to_string())
                    .collect();
                let gone = values.first().is_some_and(|n| n == ns)
                    && values.get(1).is_some_and(|q| !live.contains(q.as_str()));
                if gone && !stale.contains(&values) {
                    stale.push(values);
                }
            }
        }
        for values in stale {
            let labels: Vec<&str> = values.iter().map(String::as_str).collect();
            match labels.len() {
                2 => {
                    for c in counters {
                        let _ = c.remove_label_values(&labels);
                    }
                }
                // Three labels: the run-time histogram's status, or the limit's name.
                _ => {
                    let _ = i.run_seconds.remove_label_values(&labels);
                    let _ = i.limited.remove_label_values(&labels);
                }
            }
        }
    }
}

fn task_labels<'a>(ns: &'a Namespace, queue: &'a QueueName) -> [&'a str; 2] {
    [ns.as_str(), queue.as_str()]
}

impl Observer for Metrics {
    fn retain_limited(&self, ns: &Namespace, queue: &QueueName, limit: Limit) {
        self.inner
            .limited
            .with_label_values(&[ns.as_str(), queue.as_str(), limit.as_str()])
            .inc();
    }

    fn task_cancelled(&self, task: &Task) {
        self.inner
            .cancelled
            .with_label_values(&task_labels(&task.namespace, &task.queue))
            .inc();
    }

    fn tasks_retried(&self, ns: &Namespace, queue: &QueueName, n: u64) {
        self.inner
            .retried
            .with_label_values(&task_labels(ns, queue))
            .inc_by(n);
    }

    fn tasks_deleted(&self, ns: &Namespace, queue: &QueueName, n: u64) {
        self.inner
            .deleted
            .with_label_values(&task_labels(ns, queue))
            .inc_by(n);
    }

    fn tasks_created(&self, ns: &Namespace, queue: &QueueName, n: usize) {
        self.inner
            .created
            .with_label_values(&task_labels(ns, queue))
            .inc_by(n as u64);
    }

    fn task_retained(&self, task: &Task) {
        self.inner
            .retained
            .with_label_values(&task_labels(&task.namespace, &task.queue))
            .inc();
    }

    fn task_released(&self, task: &Task) {
        let labels = task_labels(&task.namespace, &task.queue);
        match task.state() {
            State::Released => self.inner.released.with_label_values(&labels).inc(),
            State::Retry | State::Failed | State::Cancelled => {
                self.inner.failed.with_label_values(&labels).inc()
            }
            State::New | State::Retained => {}
        }
        if let (Some(started), Some(finished)) = (task.started_at(), task.finished_at()) {
            let secs = (finished - started).as_seconds_f64().max(0.0);
            self.inner
                .run_seconds
                .with_label_values(&[labels[0], labels[1], task.state().as_str()])
                .observe(secs);
        }
    }
}
