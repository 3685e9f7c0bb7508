//! Tickers: schedules whose maturities are each claimed by exactly one process, and queue
//! tickers turned into tasks in the claim's transaction.
//!
//! Every ticker stores its next maturity, `next_at`, computed by the domain (`Ticker::claim`,
//! `Ticker::apply`) from its interval or cron schedule; SQL only compares it with the clock
//! (matured: `paused_at IS NULL AND next_at <= now`, domain `Ticker::is_matured`). Writes
//! read the row `FOR UPDATE`, apply the domain's transition and write it back, in one
//! transaction (`write.rs`); claims are compare-and-swaps of `next_at` (`claim.rs`). Every
//! change notifies `ticker:<ns>` so schedulers re-read their next maturity.

mod claim;
mod write;

pub(crate) use claim::{claim, fire, next_maturity};
pub(crate) use write::{create, register, update};

use crate::error::PgError;
use crate::schema::tickers;
use crate::sql::Now;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Duration, Namespace, Page, QueueName, Schedule, Ticker, TickerName};
use pgqueue_ports::{Listing, StoreError};
use serde_json::Value;

/// One row of `tickers`.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = tickers)]
pub(crate) struct TickerRow {
    namespace: String,
    name: String,
    payload: Value,
    interval: Option<i64>,
    cron: Option<String>,
    timezone: Option<String>,
    timestamp: Option<DateTime<Utc>>,
    queue: Option<String>,
    priority: Option<i16>,
    paused_at: Option<DateTime<Utc>>,
    next_at: DateTime<Utc>,
}

impl TickerRow {
    fn into_ticker(self) -> Result<Ticker, PgError> {
        let corrupt = |what: &str| {
            PgError::Store(StoreError::Unavailable(
                format!("ticker {:?} has an invalid {what}", self.name).into(),
            ))
        };
        Ok(Ticker {
            name: TickerName::parse(&self.name).map_err(|_| corrupt("name"))?,
            payload: self.payload,
            schedule: Schedule::from_parts(
                self.interval.map(Duration::from_nanos),
                self.cron.as_deref(),
                self.timezone.as_deref(),
            )
            .map_err(|_| corrupt("schedule"))?,
            namespace: Namespace::parse(&self.namespace).map_err(|_| corrupt("namespace"))?,
            timestamp: self.timestamp,
            queue: self
                .queue
                .as_deref()
                .map(QueueName::parse)
                .transpose()
                .map_err(|_| corrupt("queue"))?,
            priority: self.priority,
            paused_at: self.paused_at,
            next_at: self.next_at,
        })
    }
}

fn first(rows: Vec<TickerRow>, name: &TickerName) -> Result<Ticker, PgError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::not_found("ticker", name).into())
        .and_then(TickerRow::into_ticker)
}

/// Wraps a data-modifying statement named `changed` so that it notifies `ticker:<$1>` when it
/// touched a row, in the same statement (hence only once committed).
fn notifying(changed: &str) -> String {
    format!(
        "WITH changed AS ({changed}) SELECT changed.* FROM changed \
         CROSS JOIN (SELECT pg_notify('pgqueue', 'ticker:' || $1) \
                     FROM (SELECT 1 FROM changed LIMIT 1) AS one) AS notified"
    )
}

/// The ticker, or NotFound.
pub(crate) async fn get(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
) -> Result<Ticker, PgError> {
    let row: Option<TickerRow> = crate::listing::by_key(conn, "tickers", ns, name.as_str()).await?;
    first(row.into_iter().collect(), name)
}

/// Deletes and returns the ticker.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
) -> Result<Ticker, PgError> {
    let sql = notifying("DELETE FROM tickers WHERE namespace = $1 AND name = $2 RETURNING *");
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(name.as_str())
        .load(conn)
        .await?;
    first(rows, name)
}

/// Pauses (keeping the first pause's time) or resumes the ticker, notifying schedulers.
pub(crate) async fn pause(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    name: &TickerName,
    paused: bool,
) -> Result<Ticker, PgError> {
    let sql = notifying(
        "UPDATE tickers SET paused_at = CASE WHEN $3 \
           THEN coalesce(paused_at, coalesce($4::timestamptz, now())) END \
         WHERE namespace = $1 AND name = $2 RETURNING *",
    );
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(name.as_str())
        .bind::<Bool, _>(paused)
        .bind::<Nullable<Timestamptz>, _>(now)
        .load(conn)
        .await?;
    first(rows, name)
}

/// Tickers by name, one page, with the total.
pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    page: Page,
) -> Result<Listing<Ticker>, PgError> {
    let (count, rows) = crate::listing::by_name::<TickerRow>(conn, "tickers", ns, page).await?;
    let items = rows
        .into_iter()
        .map(TickerRow::into_ticker)
        .collect::<Result<_, _>>()?;
    Ok(Listing { count, items })
}
