//! Tickers: periodic schedules, each maturity claimed by exactly one process
//! (`FOR UPDATE SKIP LOCKED`), and queue tickers turned into tasks in the claim's transaction.
//!
//! Matured means `timestamp IS NULL OR timestamp + interval <= now` (domain rule
//! `Ticker::is_matured`); a claim sets `timestamp = now`. Every change notifies
//! `ticker:<ns>` so schedulers re-read their next maturity.

use crate::error::{PgError, conflict_on_unique};
use crate::schema::tickers;
use crate::sql::{Now, plus, with_now};
use crate::tasks;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{
    Created, Duration, Namespace, NewTask, Page, QueueName, Ticker, TickerName, TickerPatch,
};
use pgqueue_ports::{FiredTicker, Listing, StoreError, TickerScope};
use serde_json::Value;

/// One row of `tickers`.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = tickers)]
pub(crate) struct TickerRow {
    namespace: String,
    name: String,
    payload: Value,
    interval: i64,
    timestamp: Option<DateTime<Utc>>,
    queue: Option<String>,
    priority: Option<i16>,
    paused_at: Option<DateTime<Utc>>,
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
            interval: Duration::from_nanos(self.interval),
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

/// The patch's target queue, if it names one.
fn target(patch: &TickerPatch) -> Option<&str> {
    patch.queue().flatten().map(QueueName::as_str)
}

/// Creates the ticker with defaults + patch; Conflict if it exists. (That a target queue
/// exists is checked by the application core, as for every adapter: no foreign key, since a
/// queue may be deleted later.)
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    let t = defaults(ns, name, patch);
    let sql = notifying(
        "INSERT INTO tickers (namespace, name, payload, \"interval\", \"timestamp\", queue, priority) \
         VALUES ($1, $2, $3, $4, NULL, $5, $6) RETURNING *",
    );
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(name.as_str())
        .bind::<Jsonb, _>(t.payload)
        .bind::<BigInt, _>(t.interval.as_nanos())
        .bind::<Nullable<Text>, _>(t.queue.as_ref().map(|q| q.as_str()))
        .bind::<Nullable<Int2>, _>(t.priority)
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), "ticker already exists"))?;
    first(rows, name)
}

fn defaults(ns: &Namespace, name: &TickerName, patch: &TickerPatch) -> Ticker {
    Ticker::from_patch(ns.clone(), name.clone(), patch)
}

/// Upsert that keeps an existing ticker's timestamp.
pub(crate) async fn register(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    let t = defaults(ns, name, patch);
    let sql = notifying(
        "INSERT INTO tickers (namespace, name, payload, \"interval\", \"timestamp\", queue, priority) \
         VALUES ($1, $2, $3, $4, NULL, $5, $9) \
         ON CONFLICT (namespace, name) DO UPDATE SET \
           payload = coalesce($6, tickers.payload), \
           \"interval\" = coalesce($7, tickers.\"interval\"), \
           queue = CASE WHEN $8 THEN $5 ELSE tickers.queue END, \
           priority = CASE WHEN $10 THEN $9 ELSE tickers.priority END \
         RETURNING *",
    );
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(name.as_str())
        .bind::<Jsonb, _>(t.payload)
        .bind::<BigInt, _>(t.interval.as_nanos())
        .bind::<Nullable<Text>, _>(t.queue.as_ref().map(|q| q.as_str()))
        .bind::<Nullable<Jsonb>, _>(patch.payload().cloned())
        .bind::<Nullable<BigInt>, _>(patch.interval().map(Duration::as_nanos))
        .bind::<Bool, _>(patch.queue().is_some())
        .bind::<Nullable<Int2>, _>(t.priority)
        .bind::<Bool, _>(patch.priority().is_some())
        .load(conn)
        .await?;
    first(rows, name)
}

/// Applies the patch (a name renames); NotFound, or Conflict on a rename onto another.
pub(crate) async fn update(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    name: &TickerName,
    patch: &TickerPatch,
) -> Result<Ticker, PgError> {
    let sql = notifying(
        "UPDATE tickers SET name = coalesce($3, name), payload = coalesce($4, payload), \
           \"interval\" = coalesce($6, \"interval\"), \
           queue = CASE WHEN $7 THEN $5 ELSE queue END, \
           priority = CASE WHEN $9 THEN $8 ELSE priority END \
         WHERE namespace = $1 AND name = $2 RETURNING *",
    );
    let rows: Vec<TickerRow> = diesel::sql_query(sql)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(name.as_str())
        .bind::<Nullable<Text>, _>(patch.name().map(TickerName::as_str))
        .bind::<Nullable<Jsonb>, _>(patch.payload().cloned())
        .bind::<Nullable<Text>, _>(target(patch))
        .bind::<Nullable<BigInt>, _>(patch.interval().map(Duration::as_nanos))
        .bind::<Bool, _>(patch.queue().is_some())
        .bind::<Nullable<Int2>, _>(patch.priority().flatten())
        .bind::<Bool, _>(patch.priority().is_some())
        .load(conn)
        .await
        .map_err(|e| conflict_on_unique(e.into(), "ticker already exists"))?;
    first(rows, name)
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

/// When ticker `k` matures, NULL if it never fired (it is matured now, and sorts first:
/// longest matured). Domain: `Ticker::matures_at`.
macro_rules! due_sql {
    () => {
        plus!("k.\"timestamp\"", "k.\"interval\"")
    };
}

/// When ticker `k` matures or matured, never fired counting as `c.now` (domain:
/// `Ticker::is_matured`).
macro_rules! matures_at_sql {
    () => {
        concat!("coalesce(", due_sql!(), ", c.now)")
    };
}

/// Claims up to `$3` matured tickers in `$2`'s scope, longest matured first (never fired,
/// then by maturity, namespace and name), returning each with when it was due.
fn claim_sql(scope: &str) -> String {
    format!(
        "{}UPDATE tickers t SET \"timestamp\" = c.now FROM c, ( \
           SELECT k.namespace, k.name, {} AS due FROM tickers k, c WHERE {scope} \
             AND k.paused_at IS NULL AND {} <= c.now \
           ORDER BY due NULLS FIRST, k.namespace COLLATE \"C\", k.name COLLATE \"C\" LIMIT $3 \
           FOR UPDATE OF k SKIP LOCKED) AS d \
         WHERE t.namespace = d.namespace AND t.name = d.name \
         RETURNING t.*, d.due",
        with_now!(),
        due_sql!(),
        matures_at_sql!(),
    )
}

/// A claimed ticker and when it was due.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(embed)]
    ticker: TickerRow,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    due: Option<DateTime<Utc>>,
}

/// The claimed tickers in claim order.
fn in_claim_order(mut rows: Vec<Claimed>) -> Result<Vec<Ticker>, PgError> {
    rows.sort_by(|a, b| {
        (a.due, &a.ticker.namespace, &a.ticker.name).cmp(&(
            b.due,
            &b.ticker.namespace,
            &b.ticker.name,
        ))
    });
    rows.into_iter().map(|c| c.ticker.into_ticker()).collect()
}

/// Claims one matured queue-less ticker of the namespace.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
) -> Result<Option<Ticker>, PgError> {
    let sql = claim_sql("k.namespace = $2 AND k.queue IS NULL");
    let rows: Vec<Claimed> = diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<BigInt, _>(1)
        .load(conn)
        .await?;
    Ok(in_claim_order(rows)?.into_iter().next())
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
        {
            let sql = claim_sql("($2::text IS NULL) AND k.queue IS NOT NULL");
            let rows: Vec<Claimed> = diesel::sql_query(sql)
                .bind::<Nullable<Timestamptz>, _>(now)
                .bind::<Nullable<Text>, _>(None::<&str>)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
            let tickers = in_claim_order(rows)?;
            let mut fired = Vec::with_capacity(tickers.len());
            for ticker in tickers {
                let Some(queue) = ticker.queue.clone() else {
                    continue;
                };
                let new = NewTask::from_stored(ticker.payload.clone(), ticker.task_priority());
                let task =
                    match tasks::create(conn, now, &ticker.namespace, &queue, &[new], true).await {
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
        }
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
    let (filter, ns) = match scope {
        TickerScope::Deliveries(ns) => ("k.namespace = $2 AND k.queue IS NULL", Some(ns.as_str())),
        TickerScope::Queued => ("($2::text IS NULL) AND k.queue IS NOT NULL", None),
    };
    let sql = format!(
        "{}SELECT min({}) AS next, c.now AS now FROM tickers k, c WHERE {filter} \
         AND k.paused_at IS NULL GROUP BY c.now",
        with_now!(),
        matures_at_sql!()
    );
    let row: Option<Maturity> = diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Nullable<Text>, _>(ns)
        .load(conn)
        .await?
        .pop();
    Ok(row.map(|m| (m.next - m.now).to_std().unwrap_or_default()))
}
