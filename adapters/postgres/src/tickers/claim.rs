//! Claiming maturities, exactly once across processes.
//!
//! A claim reads the matured candidates, lets the domain compute each one's next maturity
//! (`Ticker::claim`), then swaps `next_at` only where it still holds the value read (compare
//! and swap), skipping rows another claimer has locked. Of N processes racing over one
//! maturity, one swap matches and the others find `next_at` moved (or the row locked) and
//! claim nothing; nobody waits for another's lock. Because the maturity lives in the row,
//! a server that restarts, or is down across a maturity, fires it once when it is back.

use super::TickerRow;
use crate::error::PgError;
use crate::sql::{Now, with_now};
use crate::tasks;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Created, NewTask, Ticker};
use pgqueue_ports::{FiredTicker, StoreError, TickerScope};

/// Ticker `k` is matured at `c.now` (domain: `Ticker::is_matured`).
macro_rules! matured {
    () => {
        "k.paused_at IS NULL AND k.next_at <= c.now"
    };
}

/// Which tickers a statement is about: `$2` is the namespace (or NULL for every namespace).
fn scope_sql(scope: &TickerScope) -> (&'static str, Option<&str>) {
    match scope {
        TickerScope::Deliveries(ns) => ("k.namespace = $2 AND k.queue IS NULL", Some(ns.as_str())),
        TickerScope::Queued => ("($2::text IS NULL) AND k.queue IS NOT NULL", None),
    }
}

/// A matured ticker and the instant the statement looked at.
#[derive(QueryableByName)]
struct Candidate {
    #[diesel(embed)]
    ticker: TickerRow,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// Up to `limit` matured tickers of the scope, in claim order (domain: `Ticker::claim_order`),
/// each already claimed in memory: its new timestamp and next maturity computed, with the
/// maturity it had.
async fn candidates(
    conn: &mut AsyncPgConnection,
    now: Now,
    scope: &TickerScope,
    limit: u32,
) -> Result<Vec<(Ticker, DateTime<Utc>)>, PgError> {
    let (filter, ns) = scope_sql(scope);
    let sql = format!(
        "{}SELECT k.*, c.now AS now FROM tickers k, c WHERE {filter} AND {} \
         ORDER BY (k.\"timestamp\" IS NOT NULL), k.next_at, k.namespace COLLATE \"C\", \
           k.name COLLATE \"C\" LIMIT $3",
        with_now!(),
        matured!()
    );
    let rows: Vec<Candidate> = diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Nullable<Text>, _>(ns)
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let now = row.now;
        let mut t = row.ticker.into_ticker()?;
        let was = t.next_at;
        t.claim(now).map_err(StoreError::Rule)?;
        out.push((t, was));
    }
    Ok(out)
}

/// Swaps in the claimed tickers' timestamps and next maturities where `next_at` still holds
/// the value they were read with and no other claimer holds the row; answers those swapped,
/// in the order given.
async fn swap(
    conn: &mut AsyncPgConnection,
    claimed: &[(Ticker, DateTime<Utc>)],
) -> Result<Vec<Ticker>, PgError> {
    const SWAP: &str = "WITH u AS ( \
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
                                $5::timestamptz[]) AS u(ns, name, was, fired, next)), \
         k AS (SELECT t.namespace, t.name, u.fired, u.next FROM tickers t \
               JOIN u ON t.namespace = u.ns AND t.name = u.name \
               WHERE t.next_at = u.was AND t.paused_at IS NULL \
               FOR UPDATE OF t SKIP LOCKED) \
         UPDATE tickers t SET \"timestamp\" = k.fired, next_at = k.next FROM k \
         WHERE t.namespace = k.namespace AND t.name = k.name RETURNING t.*";
    let ns: Vec<&str> = claimed.iter().map(|(t, _)| t.namespace.as_str()).collect();
    let names: Vec<&str> = claimed.iter().map(|(t, _)| t.name.as_str()).collect();
    let was: Vec<DateTime<Utc>> = claimed.iter().map(|(_, w)| *w).collect();
    let fired: Vec<Option<DateTime<Utc>>> = claimed.iter().map(|(t, _)| t.timestamp).collect();
    let next: Vec<DateTime<Utc>> = claimed.iter().map(|(t, _)| t.next_at).collect();
    let rows: Vec<TickerRow> = diesel::sql_query(SWAP)
        .bind::<Array<Text>, _>(ns)
        .bind::<Array<Text>, _>(names)
        .bind::<Array<Timestamptz>, _>(was)
        .bind::<Array<Nullable<Timestamptz>>, _>(fired)
        .bind::<Array<Timestamptz>, _>(next)
        .load(conn)
        .await?;
    let mut swapped: Vec<Ticker> = rows
        .into_iter()
        .map(TickerRow::into_ticker)
        .collect::<Result<_, _>>()?;
    let position = |t: &Ticker| {
        claimed
            .iter()
            .position(|(c, _)| c.namespace == t.namespace && c.name == t.name)
    };
    swapped.sort_by_key(|t| position(t));
    Ok(swapped)
}

/// How many candidates a delivery claim looks at, so that one ticker another process is
/// claiming does not hide the next matured one.
const DELIVERY_CANDIDATES: u32 = 4;

/// Claims one matured queue-less ticker of the namespace.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &pgqueue_domain::Namespace,
) -> Result<Option<Ticker>, PgError> {
    let scope = TickerScope::Deliveries(ns.clone());
    for one in candidates(conn, now, &scope, DELIVERY_CANDIDATES).await? {
        if let Some(t) = swap(conn, std::slice::from_ref(&one)).await?.pop() {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Claims up to `limit` matured queue tickers in every namespace and creates their tasks in
/// the same transaction; a ticker whose queue is gone is claimed with no task (and logged).
pub(crate) async fn fire(
    conn: &mut AsyncPgConnection,
    now: Now,
    limit: u32,
) -> Result<Vec<FiredTicker>, PgError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    conn.transaction(async |conn| -> Result<Vec<FiredTicker>, PgError> {
        let claimed = candidates(conn, now, &TickerScope::Queued, limit).await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let tickers = swap(conn, &claimed).await?;
        let mut fired = Vec::with_capacity(tickers.len());
        for ticker in tickers {
            let Some(queue) = ticker.queue.clone() else {
                continue;
            };
            let new = NewTask::from_stored(ticker.payload.clone(), ticker.task_priority());
            let task = match tasks::create(conn, now, &ticker.namespace, &queue, &[new], true).await
            {
                Ok(mut created) => created.pop().map(Created::into_task),
                Err(PgError::Store(StoreError::NotFound(_))) => {
                    tracing::warn!(
                        namespace = %ticker.namespace,
                        ticker = %ticker.name,
                        queue = %queue,
                        "ticker matured but its queue no longer exists; maturity skipped"
                    );
                    None
                }
                Err(e) => return Err(e),
            };
            fired.push(FiredTicker { ticker, task });
        }
        Ok(fired)
    })
    .await
}

#[derive(QueryableByName)]
struct Maturity {
    #[diesel(sql_type = Timestamptz)]
    next: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// How long until the scope's earliest maturity, on the database's clock.
pub(crate) async fn next_maturity(
    conn: &mut AsyncPgConnection,
    now: Now,
    scope: &TickerScope,
) -> Result<Option<std::time::Duration>, PgError> {
    let (filter, ns) = scope_sql(scope);
    let sql = format!(
        "{}SELECT min(k.next_at) AS next, c.now AS now FROM tickers k, c WHERE {filter} \
         AND k.paused_at IS NULL GROUP BY c.now",
        with_now!(),
    );
    let row: Option<Maturity> = diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Nullable<Text>, _>(ns)
        .load(conn)
        .await?
        .pop();
    Ok(row.map(|m| (m.next - m.now).to_std().unwrap_or_default()))
}
