//! Ticker operations of the [`Manager`], and waiting for a ticker to mature.

use super::{Manager, ticker_changed};
use crate::error::Result;
use pgqueue_domain::ticker::MAX_SCHEDULE;
use pgqueue_domain::{
    Error as DomainError, Page, QueueName, Ticker, TickerMeta, TickerName, Timestamp,
};
use pgqueue_ports::{Listing, TickerScope};
use std::time::Duration;

/// How many maturities a schedule question answers by default.
const DEFAULT_SCHEDULE: u32 = 5;

/// The longest a ticker waiter sleeps without looking again: a safety net for a lost
/// wake-up, short enough that a ticker still fires within a second of maturing.
const MAX_TICKER_SLEEP: Duration = Duration::from_secs(1);
/// The shortest sleep between two claims, so a ticker locked by another claimer (which the
/// claim skips) does not make waiters spin.
const MIN_TICKER_SLEEP: Duration = Duration::from_millis(5);

impl Manager {
    /// Checks that a ticker's target queue exists in this namespace.
    async fn check_ticker_queue(&self, queue: Option<Option<&QueueName>>) -> Result<()> {
        if let Some(Some(q)) = queue {
            self.store.get_queue(&self.namespace, q).await?;
        }
        Ok(())
    }

    /// Creates the ticker if missing, then applies the given fields; an existing ticker
    /// keeps its timestamp, so re-registering does not fire it again.
    pub async fn register_ticker(&self, meta: TickerMeta) -> Result<Ticker> {
        let (name, patch) = meta.validate_new()?;
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .register_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// Creates a ticker; conflict if it exists. It fires at the next poll.
    pub async fn create_ticker(&self, meta: TickerMeta) -> Result<Ticker> {
        let (name, patch) = meta.validate_new()?;
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .create_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// The ticker named `name`.
    pub async fn get_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self.store.get_ticker(&self.namespace, &name).await?)
    }

    /// Changes only the given fields; `ticker` renames.
    pub async fn update_ticker(&self, name: &str, meta: TickerMeta) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        let patch = meta.validate()?;
        if patch.is_empty() {
            return Err(DomainError::NoPatchValues.into());
        }
        self.check_ticker_queue(patch.queue()).await?;
        Ok(self
            .store
            .update_ticker(&self.namespace, &name, &patch)
            .await?)
    }

    /// Deletes the ticker; returns it.
    pub async fn delete_ticker(&self, name: &str) -> Result<Ticker> {
        let name = TickerName::parse(name)?;
        Ok(self.store.delete_ticker(&self.namespace, &name).await?)
    }

    /// The ticker's next `n` maturities (1 to 100, default 5) strictly after `from` (default:
    /// now, on the storage's clock), assuming each fires on time.
    pub async fn ticker_schedule(
        &self,
        name: &str,
        n: Option<u64>,
        from: Option<Timestamp>,
    ) -> Result<Vec<Timestamp>> {
        let name = TickerName::parse(name)?;
        let n = match n {
            None => DEFAULT_SCHEDULE,
            Some(n) if (1..=u64::from(MAX_SCHEDULE)).contains(&n) => n as u32,
            Some(n) => {
                return Err(DomainError::InvalidField {
                    field: "n",
                    reason: format!("must be between 1 and {MAX_SCHEDULE}, got {n}"),
                }
                .into());
            }
        };
        if let Some(from) = from {
            pgqueue_domain::time::check_in_range("from", from)?;
        }
        let ticker = self.store.get_ticker(&self.namespace, &name).await?;
        let from = match from {
            Some(f) => f,
            None => self.store.now().await?,
        };
        Ok(ticker.upcoming(from, n))
    }

    /// Tickers ordered by name.
    pub async fn list_tickers(&self, page: Page) -> Result<Listing<Ticker>> {
        Ok(self.store.list_tickers(&self.namespace, page).await?)
    }

    /// Claims one matured ticker without a queue, or none. Each maturity goes to exactly
    /// one claimer across all processes.
    pub async fn next_ticker(&self) -> Result<Option<Ticker>> {
        Ok(self.store.claim_ticker(&self.namespace).await?)
    }

    /// Waits for the next matured ticker without a queue and claims it. It sleeps until the
    /// earliest maturity (on the storage's clock) or a ticker wake-up, never polling faster
    /// than needed. The claim is the last await, so dropping the future between claims
    /// loses no maturity (the SSE stream relies on that when a client leaves).
    pub async fn wait_for_ticker(&self) -> Result<Ticker> {
        let mut wakeups = self.store.signal().subscribe();
        let scope = TickerScope::Deliveries(self.namespace.clone());
        loop {
            if let Some(ticker) = self.next_ticker().await? {
                return Ok(ticker);
            }
            let wait = self
                .store
                .next_maturity(&scope)
                .await?
                .unwrap_or(MAX_TICKER_SLEEP)
                .clamp(MIN_TICKER_SLEEP, MAX_TICKER_SLEEP);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ticker_changed(&mut wakeups, &self.namespace) => {}
            }
        }
    }
}
