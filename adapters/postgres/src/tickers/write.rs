//! Creating and changing tickers: the domain computes the ticker (its schedule and next
//! maturity) from the row it read `FOR UPDATE`, and the row is written back whole, in one
//! transaction, so a concurrent claim (which skips locked rows) never sees half a change.

use super::{TickerRow, first, notifying};
use crate::error::{PgError, conflict_on_unique};
use crate::sql::Now;
use crate::tasks;
use diesel::sql_types::{BigInt, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Duration, Namespace, Ticker, TickerName, TickerPatch};
use pgqueue_ports::StoreError;

const EXISTS: &str = "ticker already exists";

/// Inserts `t`; with `upsert`, a row that exists already is left alone and `None` answered.
async fn insert(
    conn: &mut AsyncPgConnection,
    t: &Ticker,
    upsert: bool,
) -> Result<Option<Ticker>, PgError> {
    let sql = notifying(&format!(
        "INSERT INTO tickers (namespace, name, payload, \"interval\", cron, timezone, \
           \"timestamp\", queue, priority, paused_at, next_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) {} RETURNING *",
        if upsert {
            "ON CONFLICT (namespace, name) DO NOTHING"
        } else {
            ""
        }
    ));
    let cron = t.schedule.cron();
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(t.namespace.as_str())
        .bind::<Text, _>(t.name.as_str())
        .bind::<Jsonb, _>(&t.payload)
        .bind::<Nullable<BigInt>, _>(t.schedule.interval().map(Duration::as_nanos))
        .bind::<Nullable<Text>, _>(cron.map(|c| c.expr().as_str()))
        .bind::<Nullable<Text>, _>(cron.map(|c| c.zone().name()))
        .bind::<Nullable<Timestamptz>, _>(t.timestamp)
        .bind::<Nullable<Text>, _>(t.queue.as_ref().map(|q| q.as_str()))
        .bind::<Nullable<Int2>, _>(t.priority)
        .bind::<Nullable<Timestamptz>, _>(t.paused_at)
        .bind::<Timestamptz, _>(t.next_at)
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), EXISTS))?;
    rows.into_iter()
        .next()
        .map(TickerRow::into_ticker)
        .transpose()
}

/// Writes `t`'s settings and next maturity over the row named `old` (a rename when `t`'s
/// name differs; Conflict onto another ticker's name).
async fn overwrite(
    conn: &mut AsyncPgConnection,
    old: &TickerName,
    t: &Ticker,
) -> Result<Ticker, PgError> {
    let sql = notifying(
        "UPDATE tickers SET name = $3, payload = $4, \"interval\" = $5, cron = $6, \
           timezone = $7, queue = $8, priority = $9, next_at = $10 \
         WHERE namespace = $1 AND name = $2 RETURNING *",
    );
    let cron = t.schedule.cron();
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(t.namespace.as_str())
        .bind::<Text, _>(old.as_str())
        .bind::<Text, _>(t.name.as_str())
        .bind::<Jsonb, _>(&t.payload)
        .bind::<Nullable<BigInt>, _>(t.schedule.interval().map(Duration::as_nanos))
        .bind::<Nullable<Text>, _>(cron.map(|c| c.expr().as_str()))
        .bind::<Nullable<Text>, _>(cron.map(|c| c.zone().name()))
        .bind::<Nullable<Text>, _>(t.queue.as_ref().map(|q| q.as_str()))
        .bind::<Nullable<Int2>, _>(t.priority)
        .bind::<Timestamptz, _>(t.next_at)
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), EXISTS))?;
    first(rows, old)
}

/// The ticker, locked until the transaction ends; `None` if there is none.
async fn locked(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
) -> Result<Option<Ticker>, PgError> {
    let rows: Vec<TickerRow> =
        diesel::sql_query("SELECT * FROM tickers WHERE namespace = $1 AND name = $2 FOR UPDATE")
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(name.as_str())
            .load(conn)
            .await?;
    rows.into_iter()
        .next()
        .map(TickerRow::into_ticker)
        .transpose()
}

/// A domain refusal in the store's words.
fn refused(e: pgqueue_domain::Error) -> PgError {
    StoreError::Rule(e).into()
}

/// Creates the ticker with defaults + patch; Conflict if it exists. (That a target queue
/// exists is checked by the application core, as for every adapter: no foreign key, since a
/// queue may be deleted later.)
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    let now = tasks::now(conn, now).await?;
    let t = Ticker::from_patch(ns.clone(), name.clone(), patch, now).map_err(refused)?;
    insert(conn, &t, false)
        .await?
        .ok_or_else(|| StoreError::Conflict(EXISTS.into()).into())
}

/// Upsert that keeps an existing ticker's timestamp, and its next maturity unless the
/// schedule changes.
pub(crate) async fn register(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    conn.transaction(async |conn| {
        let now = tasks::now(conn, now).await?;
        // Two rounds: a register racing ours may insert between our look and our insert.
        for _ in 0..2 {
            if let Some(mut t) = locked(conn, ns, name).await? {
                t.apply_settings(patch, now).map_err(refused)?;
                return overwrite(conn, name, &t).await;
            }
            let t = Ticker::from_patch(ns.clone(), name.clone(), patch, now).map_err(refused)?;
            if let Some(t) = insert(conn, &t, true).await? {
                return Ok(t);
            }
        }
        Err(StoreError::Unavailable("ticker kept changing; try again".into()).into())
    })
    .await
}

/// Applies the patch (a name renames); NotFound, or Conflict on a rename onto another.
pub(crate) async fn update(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    conn.transaction(async |conn| {
        let now = tasks::now(conn, now).await?;
        let mut t = locked(conn, ns, name)
            .await?
            .ok_or_else(|| PgError::from(StoreError::not_found("ticker", name)))?;
        t.apply(patch, now).map_err(refused)?;
        overwrite(conn, name, &t).await
    })
    .await
}
