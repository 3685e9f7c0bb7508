//! The event stream's reading side: numbering committed event rows, reading them back, and
//! pruning them (the writing side is `sql::record_events`, in every changing statement).
//!
//! Why a numbering step: event rows are inserted by concurrent transactions that commit in
//! any order, so ids taken at insert time could let a reader see id 7 before id 6 commits and
//! never look back. Instead rows arrive unnumbered, and a reader first numbers every row that
//! has committed since the last numbering, in insertion order, under a transaction-level
//! advisory lock (`pg_try_advisory_xact_lock`: one numberer at a time across servers; a
//! reader that finds it taken simply reads what is numbered). Each row gets a contiguous range
//! of ids ending at its `last_id`, continuing from `task_event_head`. Numbering commits before
//! its rows can be read, and numberings are serial, so a reader that sees id N sees every id
//! below N, and a row committed late is numbered above everything numbered before it.
//! The lock and the statements are transaction-scoped: nothing depends on session state, so
//! the pool may sit behind PgBouncer in transaction mode.

use crate::error::PgError;
use crate::listing::Count;
use crate::sql::{Now, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::event::resume;
use pgqueue_domain::{
    Duration, EventId, EventKind, Namespace, QueueName, Resume, Status, TaskEvent,
};
use pgqueue_ports::{EventPage, StoreError};

/// The advisory lock key of the numbering ("pgqueue events" in a 64-bit constant).
const NUMBERING_LOCK: i64 = 0x7067_7165_7665_6e74;

/// How many unnumbered rows one numbering takes (the rest wait for the next read).
const NUMBER_AT_MOST: i64 = 10_000;

/// Numbers the oldest committed unnumbered rows, continuing from the head.
const NUMBER: &str = "WITH p AS (SELECT id, cardinality(kinds) AS n FROM task_events \
       WHERE last_id IS NULL ORDER BY id LIMIT $1), \
     s AS (SELECT id, (sum(n) OVER (ORDER BY id))::bigint AS upto FROM p), \
     total AS (SELECT coalesce(max(upto), 0) AS n FROM s), \
     h AS (UPDATE task_event_head SET last_id = last_id + total.n FROM total \
       WHERE total.n > 0 RETURNING last_id - total.n AS base) \
     UPDATE task_events e SET last_id = h.base + s.upto FROM s, h WHERE e.id = s.id";

/// The newest id given out and the first id still kept (NULL: none kept).
const BOUNDS: &str = "SELECT h.last_id AS head, \
       (SELECT e.last_id - cardinality(e.kinds) + 1 FROM task_events e \
        WHERE e.last_id IS NOT NULL ORDER BY e.last_id LIMIT 1) AS oldest \
     FROM task_event_head h";

/// Whether a reader that has seen through `$1` has nothing to read: no committed row waits
/// for its number and the head is still `$1`. One statement, so an idle stream's poll is one
/// round trip (on an unprepared pool, inside its own short transaction) instead of a
/// transaction of four statements. A read with something to read pays it once more.
const IDLE: &str = "SELECT (h.last_id = $1 AND NOT EXISTS \
       (SELECT 1 FROM task_events e WHERE e.last_id IS NULL)) AS idle \
     FROM task_event_head h";

/// The numbered rows holding ids after `$1`, in id order.
const READ: &str = "SELECT last_id, at, namespaces, queues, tasks, kinds, statuses \
     FROM task_events WHERE last_id > $1 ORDER BY last_id LIMIT $2";

/// Forgets numbered rows older than the cut-off, a prefix in id order at a time (a row
/// newer than the cut-off stops it, so what is kept is always everything after some id).
/// Rows are numbered first: forgetting a row nobody numbered would let a reader behind it
/// miss its events without being reset.
const PRUNE: &str = concat!(
    with_now!(),
    ", cut AS (SELECT c.now - ($2 / 1000) * interval '1 microsecond' AS before FROM c), \
     b AS (SELECT last_id, at FROM task_events WHERE last_id IS NOT NULL \
       ORDER BY last_id LIMIT $3), \
     stop AS (SELECT min(b.last_id) AS at_id FROM b, cut WHERE b.at >= cut.before), \
     upto AS (SELECT max(b.last_id) AS id FROM b, stop, cut \
       WHERE b.at < cut.before AND (stop.at_id IS NULL OR b.last_id < stop.at_id)), \
     gone AS (DELETE FROM task_events t USING upto WHERE t.last_id <= upto.id RETURNING 1) \
     SELECT count(*) AS count FROM gone"
);

#[derive(QueryableByName)]
struct Bounds {
    #[diesel(sql_type = BigInt)]
    head: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest: Option<i64>,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    last_id: i64,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Array<Text>)]
    namespaces: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    queues: Vec<String>,
    #[diesel(sql_type = Array<Nullable<BigInt>>)]
    tasks: Vec<Option<i64>>,
    #[diesel(sql_type = Array<Text>)]
    kinds: Vec<String>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    statuses: Vec<Option<String>>,
}

fn corrupt(id: i64, what: &str) -> PgError {
    PgError::Store(StoreError::Unavailable(
        format!("event row {id} has an invalid {what}").into(),
    ))
}

impl EventRow {
    /// The row's events, numbered up to `last_id`, those of `ns` after `after` only.
    fn events(
        self,
        ns: &Namespace,
        after: EventId,
        out: &mut Vec<TaskEvent>,
    ) -> Result<(), PgError> {
        let n = self.kinds.len();
        if self.namespaces.len() != n
            || self.queues.len() != n
            || self.tasks.len() != n
            || self.statuses.len() != n
        {
            return Err(corrupt(self.last_id, "shape"));
        }
        let last = u64::try_from(self.last_id).map_err(|_| corrupt(self.last_id, "id"))?;
        let first = last + 1 - n as u64;
        for i in 0..n {
            let id = first + i as u64;
            if id <= after || self.namespaces[i] != ns.as_str() {
                continue;
            }
            let kind =
                EventKind::parse(&self.kinds[i]).map_err(|_| corrupt(self.last_id, "kind"))?;
            let status = match &self.statuses[i] {
                Some(s) => Some(Status::parse(s).map_err(|_| corrupt(self.last_id, "status"))?),
                None => None,
            };
            out.push(TaskEvent {
                id,
                at: self.at,
                namespace: ns.clone(),
                queue: QueueName::parse(&self.queues[i])
                    .map_err(|_| corrupt(self.last_id, "queue"))?,
                task: self.tasks[i],
                kind,
                status,
            });
        }
        Ok(())
    }
}

/// Numbers what has committed (unless another reader is numbering right now), then reads the
/// events of `ns` after `last` from at most `limit` rows (domain: `event::resume`). A reader
/// at the head with nothing waiting is answered by one statement ([`IDLE`]).
pub(crate) async fn read(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    last: Option<EventId>,
    limit: u32,
) -> Result<EventPage, PgError> {
    if let Some(seen) = last
        && let Ok(bound) = i64::try_from(seen)
    {
        let idle: Idle = diesel::sql_query(IDLE)
            .bind::<BigInt, _>(bound)
            .get_result(conn)
            .await?;
        if idle.idle {
            return Ok(EventPage {
                events: Vec::new(),
                last: seen,
                reset: false,
            });
        }
    }
    conn.transaction(async |conn| {
        number(conn).await?;
        let bounds: Bounds = diesel::sql_query(BOUNDS).get_result(conn).await?;
        let head = u64::try_from(bounds.head).unwrap_or(0);
        let oldest = bounds.oldest.and_then(|o| u64::try_from(o).ok());
        let after = match resume(last, oldest, head) {
            Resume::Reset(head) => {
                return Ok(EventPage {
                    events: Vec::new(),
                    last: head,
                    reset: true,
                });
            }
            Resume::After(id) => id,
        };
        let rows: Vec<EventRow> = diesel::sql_query(READ)
            .bind::<BigInt, _>(i64::try_from(after).unwrap_or(i64::MAX))
            .bind::<BigInt, _>(i64::from(limit.max(1)))
            .load(conn)
            .await?;
        // Read on after the last row read; when the page was not full, after the head too.
        // Each statement has a snapshot of its own: a numbering that committed between the
        // bounds and this read gave out ids above `head`, which the rows already hold.
        let full = rows.len() >= limit.max(1) as usize;
        let last_read = rows
            .last()
            .and_then(|r| u64::try_from(r.last_id).ok())
            .unwrap_or(0);
        let through = if full { last_read } else { head.max(last_read) };
        let mut events = Vec::new();
        for row in rows {
            row.events(ns, after, &mut events)?;
        }
        Ok(EventPage {
            events,
            last: through.max(after),
            reset: false,
        })
    })
    .await
}

/// Numbers the committed unnumbered rows, inside the caller's transaction, unless another
/// transaction is numbering right now (then its numbering covers them, or the next does).
/// Answers how many rows it numbered.
async fn number(conn: &mut AsyncPgConnection) -> Result<usize, PgError> {
    let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(NUMBERING_LOCK)
        .get_result(conn)
        .await?;
    if !lock.locked {
        return Ok(0);
    }
    Ok(diesel::sql_query(NUMBER)
        .bind::<BigInt, _>(NUMBER_AT_MOST)
        .execute(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Idle {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    idle: bool,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// How many rows one prune looks at (it repeats while it is kept busy).
const PRUNE_AT_MOST: i64 = 5_000;

/// Forgets the events older than `retention` on the store's clock; returns how many rows.
pub(crate) async fn prune(
    conn: &mut AsyncPgConnection,
    now: Now,
    retention: Duration,
) -> Result<u64, PgError> {
    // Nobody may be reading: number everything that waits, so the prefix below is complete.
    while conn.transaction(async |conn| number(conn).await).await? >= NUMBER_AT_MOST as usize {}
    let mut total = 0;
    loop {
        let n: Count = diesel::sql_query(PRUNE)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<BigInt, _>(retention.as_nanos())
            .bind::<BigInt, _>(PRUNE_AT_MOST)
            .get_result(conn)
            .await?;
        total += n.total();
        if n.total() < PRUNE_AT_MOST as u64 {
            return Ok(total);
        }
    }
}
