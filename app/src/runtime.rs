//! The background runtime every server (and embedding program) runs: the ticker scheduler,
//! lease rescue and clean-up.
//!
//! - **Scheduler**: claims matured tickers that have a queue, in every namespace, and turns
//!   each maturity into a task (claim and insert are one transaction in the store, so two
//!   processes never create two tasks for one maturity). It sleeps until the next maturity on
//!   the store's clock, capped at one second, and wakes early when a ticker changes.
//! - **Lease rescue**: every few seconds, tasks whose lease passed go back to `retry` (or
//!   `failed`) so a dead worker strands nothing.
//! - **Clean-up**: the system ticker `cleanup` in namespace `pgqueue` matures once per period;
//!   whichever process claims it deletes ended tasks past their retention, in every namespace,
//!   in bounded batches until none is left.
//! - **Maintenance**: every few seconds the store is asked to keep its task table healthy
//!   (on PostgreSQL with autovacuum off: `VACUUM`/`ANALYZE` once autovacuum's thresholds pass;
//!   otherwise nothing), so claim plans do not degrade as tasks churn.

use crate::manager::Manager;
use pgqueue_domain::{Duration as WireDuration, TickerMeta};
use pgqueue_ports::{Maintenance, TickerScope, Wakeup};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The name of the system ticker that schedules clean-up.
pub const CLEANUP_TICKER: &str = "cleanup";

/// How the background runtime behaves.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How often clean-up runs (the `cleanup` ticker's interval). Default 1 hour.
    pub cleanup_period: Duration,
    /// Rows deleted per clean-up statement. Default 1,000.
    pub cleanup_batch: u32,
    /// How often lease rescue looks for passed leases. Default 2 seconds.
    pub rescue_interval: Duration,
    /// Rows rescued per statement. Default 1,000.
    pub rescue_batch: u32,
    /// Queue tickers fired per statement. Default 100.
    pub ticker_batch: u32,
    /// Longest sleep of the scheduler without looking again. Default 1 second.
    pub max_ticker_sleep: Duration,
    /// How often the store's housekeeping ([`pgqueue_ports::Store::maintain`]) is asked
    /// whether something is due. Default 10 seconds.
    pub maintenance_interval: Duration,
    /// How long task events are kept for readers that reconnect (`GET P/events` with
    /// `Last-Event-ID`); older ones are forgotten by the maintenance pass. Default 1 hour.
    pub events_retention: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cleanup_period: Duration::from_secs(3600),
            cleanup_batch: 1000,
            rescue_interval: Duration::from_secs(2),
            rescue_batch: 1000,
            ticker_batch: 100,
            max_ticker_sleep: Duration::from_secs(1),
            maintenance_interval: Duration::from_secs(10),
            events_retention: Duration::from_secs(3600),
        }
    }
}

/// The background runtime: scheduler, lease rescue, clean-up and maintenance.
#[derive(Debug, Clone)]
pub struct Runtime {
    manager: Manager,
    config: RuntimeConfig,
}

/// How long to wait after a storage error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

impl Runtime {
    /// A runtime on `manager`'s store (its namespace does not matter: the runtime serves all).
    pub fn new(manager: Manager, config: RuntimeConfig) -> Self {
        Self { manager, config }
    }

    /// Runs the four loops until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let (stop_tx, stop) = watch::channel(false);
        let loops = async {
            tokio::join!(
                self.scheduler(stop.clone()),
                self.rescuer(stop.clone()),
                self.cleaner(stop.clone()),
                self.maintainer(stop.clone())
            );
        };
        tokio::pin!(loops);
        tokio::select! {
            _ = &mut loops => {}
            _ = shutdown => {
                // Each loop notices the stop between two steps; let the current step finish.
                let _ = stop_tx.send(true);
                loops.await;
            }
        }
    }

    /// Fires queue tickers until stopped.
    async fn scheduler(&self, mut stop: watch::Receiver<bool>) {
        let store = self.manager.store().clone();
        let mut wakeups = store.signal().subscribe();
        while !*stop.borrow() {
            let wait = match store.fire_queue_tickers(self.config.ticker_batch).await {
                Ok(fired) if fired.len() as u32 >= self.config.ticker_batch => Duration::ZERO,
                Ok(fired) => {
                    for f in &fired {
                        if f.task.is_none() {
                            tracing::warn!(ticker = %f.ticker.name, namespace = %f.ticker.namespace,
                                queue = ?f.ticker.queue, "ticker queue no longer exists; maturity skipped");
                        }
                    }
                    match store.next_maturity(&TickerScope::Queued).await {
                        Ok(next) => next
                            .unwrap_or(self.config.max_ticker_sleep)
                            .min(self.config.max_ticker_sleep),
                        Err(e) => {
                            tracing::warn!(error = %e, "ticker maturity lookup failed");
                            ERROR_BACKOFF
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "firing queue tickers failed");
                    ERROR_BACKOFF
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = any_ticker_change(&mut wakeups) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Rescues passed leases until stopped.
    async fn rescuer(&self, mut stop: watch::Receiver<bool>) {
        let store = self.manager.store().clone();
        while !*stop.borrow() {
            loop {
                match store.rescue_leases(self.config.rescue_batch).await {
                    Ok(rescued) => {
                        if !rescued.is_empty() {
                            tracing::info!(
                                count = rescued.len(),
                                "rescued tasks whose lease passed"
                            );
                        }
                        if (rescued.len() as u32) < self.config.rescue_batch {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease rescue failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.rescue_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Asks the store for its housekeeping every interval until stopped.
    async fn maintainer(&self, mut stop: watch::Receiver<bool>) {
        let store = self.manager.store().clone();
        while !*stop.borrow() {
            match store.maintain(false).await {
                Ok(done) if done != Maintenance::default() => {
                    tracing::debug!(
                        vacuumed = done.vacuumed,
                        analyzed = done.analyzed,
                        reindexed = done.reindexed,
                        "store maintained"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "store maintenance failed"),
            }
            let retention = WireDuration::from_nanos(
                i64::try_from(self.config.events_retention.as_nanos()).unwrap_or(i64::MAX),
            );
            match store.prune_events(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pruned = n, "old task events forgotten"),
                Err(e) => tracing::warn!(error = %e, "pruning task events failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.maintenance_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Cleans up once per claimed `cleanup` maturity until stopped.
    async fn cleaner(&self, mut stop: watch::Receiver<bool>) {
        let system = self.manager.system();
        let period = i64::try_from(self.config.cleanup_period.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        let meta = TickerMeta {
            ticker: Some(CLEANUP_TICKER.into()),
            interval: Some(WireDuration::from_nanos(period)),
            ..Default::default()
        };
        while !*stop.borrow() {
            if let Err(e) = system.register_ticker(meta.clone()).await {
                tracing::warn!(error = %e, "registering the clean-up ticker failed");
                tokio::select! {
                    _ = tokio::time::sleep(ERROR_BACKOFF) => continue,
                    _ = stop.changed() => return,
                }
            }
            break;
        }
        while !*stop.borrow() {
            tokio::select! {
                claimed = system.wait_for_ticker() => match claimed {
                    Ok(_) => self.clean_up().await,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming the clean-up ticker failed");
                        tokio::select! {
                            _ = tokio::time::sleep(ERROR_BACKOFF) => {}
                            _ = stop.changed() => {}
                        }
                    }
                },
                _ = stop.changed() => {}
            }
        }
    }

    /// Deletes ended tasks past retention in batches until a batch comes back short.
    pub async fn clean_up(&self) {
        let store = self.manager.store();
        let mut total = 0;
        loop {
            match store.clean_up(self.config.cleanup_batch).await {
                Ok(n) => {
                    total += n;
                    if n < u64::from(self.config.cleanup_batch) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "clean-up failed");
                    break;
                }
            }
        }
        tracing::info!(deleted = total, "clean-up done");
    }
}

/// Resolves on any ticker change (any namespace: queue tickers are served everywhere).
async fn any_ticker_change(wakeups: &mut broadcast::Receiver<Wakeup>) {
    loop {
        match wakeups.recv().await {
            Ok(Wakeup::Ticker { .. } | Wakeup::Resync)
            | Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(Wakeup::Task { .. }) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

impl Manager {
    /// Delivers every matured ticker without a queue of this namespace to `handler`, one at
    /// a time, until `shutdown` resolves or the handler returns an error. Each maturity goes
    /// to exactly one subscriber across all processes.
    pub async fn run_ticker_loop<F, Fut>(
        &self,
        mut handler: F,
        shutdown: impl Future<Output = ()> + Send,
    ) -> crate::Result<()>
    where
        F: FnMut(pgqueue_domain::Ticker) -> Fut + Send,
        Fut: Future<Output = crate::Result<()>> + Send,
    {
        tokio::pin!(shutdown);
        loop {
            let ticker = tokio::select! {
                t = self.wait_for_ticker() => t,
                _ = &mut shutdown => return Ok(()),
            };
            match ticker {
                Ok(t) => handler(t).await?,
                Err(crate::Error::Storage(e)) => {
                    tracing::warn!(error = %e, "claiming a ticker failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(ERROR_BACKOFF) => {}
                        _ = &mut shutdown => return Ok(()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}
