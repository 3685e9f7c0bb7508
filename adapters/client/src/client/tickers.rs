//! Tickers: their CRUD, their schedule, and the stream of matured tickers.

use super::{Client, EventStream, check, page, sse_stream};
use crate::error::ClientError;
use crate::types::Listing;
use pgqueue_domain::{Ticker, TickerMeta};
use reqwest::Method;
use reqwest::header::ACCEPT;

impl Client {
    // ---- tickers ----

    /// Tickers ordered by name.
    pub async fn list_tickers(
        &self,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Listing<Ticker>, ClientError> {
        self.list(self.request(Method::GET, &["ticker"], &page(offset, limit))?)
            .await
    }

    /// The ticker named `name`.
    pub async fn get_ticker(&self, name: &str) -> Result<Ticker, ClientError> {
        self.call(self.request(Method::GET, &["ticker", name], &[])?)
            .await
    }

    /// Creates a ticker (`ticker` required); 409 if it exists.
    pub async fn create_ticker(&self, meta: &TickerMeta) -> Result<Ticker, ClientError> {
        self.call_with(self.request(Method::POST, &["ticker"], &[])?, meta)
            .await
    }

    /// Changes the given fields; `ticker` renames.
    pub async fn update_ticker(
        &self,
        name: &str,
        meta: &TickerMeta,
    ) -> Result<Ticker, ClientError> {
        self.call_with(self.request(Method::PATCH, &["ticker", name], &[])?, meta)
            .await
    }

    /// The ticker's next `n` maturities (default 5) strictly after `from` (default: now).
    pub async fn ticker_schedule(
        &self,
        name: &str,
        n: Option<u32>,
        from: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Listing<chrono::DateTime<chrono::Utc>>, ClientError> {
        let mut query = Vec::new();
        if let Some(n) = n {
            query.push(("n", n.to_string()));
        }
        if let Some(from) = from {
            query.push((
                "from",
                from.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ));
        }
        self.list(self.request(Method::GET, &["ticker", name, "schedule"], &query)?)
            .await
    }

    /// Deletes the ticker; returns it.
    pub async fn delete_ticker(&self, name: &str) -> Result<Ticker, ClientError> {
        self.call(self.request(Method::DELETE, &["ticker", name], &[])?)
            .await
    }

    /// Subscribes to matured tickers: `ticker` events (see [`SseEvent::ticker`](crate::SseEvent::ticker)) and `ping`
    /// keep-alives. Each ticker delivered here is consumed; dropping the stream ends the
    /// subscription.
    pub async fn next_ticker(&self) -> Result<EventStream, ClientError> {
        let req = self
            .request(Method::GET, &["ticker", "next"], &[])?
            .header(ACCEPT, "text/event-stream");
        Ok(sse_stream(check(req.send().await?).await?))
    }
}
