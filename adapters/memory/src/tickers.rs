//! Tickers in memory: schedules, claims of their maturities, and queue tickers turned into
//! tasks under the same lock as the claim.

use crate::state::{State, paginate};
use chrono::{DateTime, Utc};
use pgqueue_domain::{
    EventKind, Namespace, NewTask, Page, Task, TaskEvent, Ticker, TickerName, TickerPatch,
};
use pgqueue_ports::{FiredTicker, Listing, StoreError, StoreResult, TickerScope};

fn ticker_exists() -> StoreError {
    StoreError::Conflict("ticker already exists".into())
}

impl State {
    pub(crate) fn create_ticker(
        &mut self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Ticker> {
        let key = (ns.clone(), name.clone());
        if self.tickers.contains_key(&key) {
            return Err(ticker_exists());
        }
        let ticker = Ticker::from_patch(ns.clone(), name.clone(), patch, now)?;
        self.tickers.insert(key, ticker.clone());
        Ok(ticker)
    }

    /// Upsert that keeps an existing ticker's timestamp (and its next maturity, unless the
    /// schedule changes).
    pub(crate) fn register_ticker(
        &mut self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Ticker> {
        let key = (ns.clone(), name.clone());
        let ticker = match self.tickers.get(&key) {
            Some(existing) => {
                let mut t = existing.clone();
                t.apply_settings(patch, now)?;
                t
            }
            None => Ticker::from_patch(ns.clone(), name.clone(), patch, now)?,
        };
        self.tickers.insert(key, ticker.clone());
        Ok(ticker)
    }

    pub(crate) fn get_ticker(&self, ns: &Namespace, name: &TickerName) -> StoreResult<Ticker> {
        self.tickers
            .get(&(ns.clone(), name.clone()))
            .cloned()
            .ok_or_else(|| StoreError::not_found("ticker", name))
    }

    pub(crate) fn update_ticker(
        &mut self,
        ns: &Namespace,
        name: &TickerName,
        patch: &TickerPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Ticker> {
        let key = (ns.clone(), name.clone());
        let mut ticker = self.get_ticker(ns, name)?;
        ticker.apply(patch, now)?;
        let new_key = (ns.clone(), ticker.name.clone());
        if new_key != key {
            if self.tickers.contains_key(&new_key) {
                return Err(ticker_exists());
            }
            self.tickers.remove(&key);
        }
        self.tickers.insert(new_key, ticker.clone());
        Ok(ticker)
    }

    pub(crate) fn delete_ticker(
        &mut self,
        ns: &Namespace,
        name: &TickerName,
    ) -> StoreResult<Ticker> {
        self.tickers
            .remove(&(ns.clone(), name.clone()))
            .ok_or_else(|| StoreError::not_found("ticker", name))
    }

    pub(crate) fn list_tickers(&self, ns: &Namespace, page: Page) -> Listing<Ticker> {
        paginate(
            self.tickers
                .values()
                .filter(|t| &t.namespace == ns)
                .cloned(),
            page,
        )
    }

    /// Claims the longest-matured queue-less ticker of `ns`.
    pub(crate) fn claim_ticker(
        &mut self,
        ns: &Namespace,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Ticker>> {
        let next = self
            .tickers
            .values()
            .filter(|t| &t.namespace == ns && t.queue.is_none() && t.is_matured(now))
            .min_by_key(|t| t.claim_order())
            .map(|t| (t.namespace.clone(), t.name.clone()));
        let Some(key) = next else { return Ok(None) };
        let Some(ticker) = self.tickers.get_mut(&key) else {
            return Ok(None);
        };
        ticker.claim(now)?;
        Ok(Some(ticker.clone()))
    }

    /// Claims up to `limit` matured queue tickers in every namespace, creating one task per
    /// maturity (none when the queue is gone).
    pub(crate) fn fire_queue_tickers(
        &mut self,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<FiredTicker>> {
        let mut matured: Vec<&Ticker> = self
            .tickers
            .values()
            .filter(|t| t.queue.is_some() && t.is_matured(now))
            .collect();
        matured.sort_by_key(|t| t.claim_order());
        let keys: Vec<(Namespace, TickerName)> = matured
            .into_iter()
            .take(limit as usize)
            .map(|t| (t.namespace.clone(), t.name.clone()))
            .collect();
        let mut fired = Vec::new();
        for key in keys {
            let Some(mut ticker) = self.tickers.get(&key).cloned() else {
                continue;
            };
            ticker.claim(now)?;
            self.tickers.insert(key.clone(), ticker.clone());
            let queue = ticker
                .queue
                .clone()
                .and_then(|q| self.queues.get(&(key.0.clone(), q)).cloned());
            let task = match queue {
                Some(q) => {
                    self.last_id += 1;
                    let new = NewTask::from_stored(ticker.payload.clone(), ticker.task_priority());
                    let task = Task::create(self.last_id, &q, new, now);
                    self.tasks.insert(task.id, task.clone());
                    self.events
                        .record([TaskEvent::of(&task, EventKind::Created, now)]);
                    Some(task)
                }
                None => None,
            };
            fired.push(FiredTicker { ticker, task });
        }
        Ok(fired)
    }

    /// How long until the earliest maturity in the scope.
    pub(crate) fn next_maturity(
        &self,
        scope: &TickerScope,
        now: DateTime<Utc>,
    ) -> Option<std::time::Duration> {
        let in_scope = |t: &&Ticker| match scope {
            TickerScope::Deliveries(ns) => &t.namespace == ns && t.queue.is_none(),
            TickerScope::Queued => t.queue.is_some(),
        };
        self.tickers
            .values()
            .filter(in_scope)
            .filter(|t| t.paused_at.is_none())
            .map(|t| (t.next_at - now).to_std().unwrap_or_default())
            .min()
    }
}
