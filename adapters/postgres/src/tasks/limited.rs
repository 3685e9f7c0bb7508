//! Claims from a queue with `max_running` or `rate` (domain: `Limits::admit`), exact across
//! every process.
//!
//! A limited queue's claims take turns on its row: each claim is a transaction that first
//! locks the row (`FOR UPDATE`), then counts the queue's retained tasks in a *later*
//! statement. Under READ COMMITTED a statement's snapshot is taken when it starts, so the
//! count, started after the lock was granted, sees every task the previous holder of the
//! lock retained (it committed before letting go). Nothing else makes a task retained, and
//! releases, rescues and cancels only lower the count, so a claim can never take more than
//! the limit leaves free, however many processes race. The rate's token bucket lives in the
//! same row and is debited before the lock is let go.
//!
//! The admission itself is the domain's: the row and the count are read, `Limits::admit`
//! decides, and the claim and the bucket are written back in the same transaction.

use super::claim::{CLAIM_LIMITED, unlimited};
use super::{TaskRow, into_tasks};
use crate::cached::cached;
use crate::error::PgError;
use crate::sql::{Now, retainable, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Bucket, Limits, Namespace, QueueName, Rate, Task, WorkerName};
use pgqueue_ports::{Limited, StoreError};

/// The unpaused limited queues of namespace `$1` among `$2` (empty: all), in name order (the
/// memory adapter's order, byte-wise).
const LIMITED_QUEUES: &str = concat!(
    "SELECT pq.name FROM queues pq WHERE pq.namespace = $1 \
       AND (cardinality($2::text[]) = 0 OR pq.name = ANY($2)) \
       AND pq.paused_at IS NULL AND NOT (",
    unlimited!(),
    ") ORDER BY pq.name COLLATE \"C\""
);

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The limited queues a claim over `names` (empty: any queue) may take from next.
pub(super) async fn queues(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    names: &[&str],
) -> Result<Vec<QueueName>, PgError> {
    struct LimitedQueues;
    let rows: Vec<NameRow> = cached::<LimitedQueues, _>(
        diesel::sql_query(LIMITED_QUEUES)
            .bind::<Text, _>(ns.as_str())
            .bind::<Array<Text>, _>(names),
    )
    .load(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            QueueName::parse(&r.name)
                .map_err(|e| StoreError::Unavailable(e.to_string().into()).into())
        })
        .collect()
}

/// Locks queue `$2` of namespace `$1` for the rest of the transaction and reads its limits
/// and bucket.
const LOCK: &str = "SELECT q.paused_at, q.max_running, q.rate_per_second, q.rate_burst, \
       q.rate_tokens, q.rate_at FROM queues q WHERE q.namespace = $1 AND q.name = $2 \
     FOR UPDATE OF q";

#[derive(QueryableByName)]
struct LockRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    paused_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    max_running: Option<i32>,
    #[diesel(sql_type = Nullable<Double>)]
    rate_per_second: Option<f64>,
    #[diesel(sql_type = Nullable<Integer>)]
    rate_burst: Option<i32>,
    #[diesel(sql_type = Nullable<Double>)]
    rate_tokens: Option<f64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    rate_at: Option<DateTime<Utc>>,
}

impl LockRow {
    fn limits(&self) -> Limits {
        Limits {
            max_running: self.max_running.and_then(|n| u32::try_from(n).ok()),
            rate: self
                .rate_per_second
                .zip(self.rate_burst.and_then(|b| u32::try_from(b).ok()))
                .and_then(|(per_second, burst)| Rate::new(per_second, burst).ok()),
        }
    }

    fn bucket(&self) -> Option<Bucket> {
        self.rate_tokens
            .zip(self.rate_at)
            .map(|(tokens, at)| Bucket { tokens, at })
    }
}

/// The instant the claim works at, and the tasks of queue `$3` that hold one of its slots
/// then (domain: `Task::holds_slot`: retained and not expired), through `tasks_retained`.
///
/// The instant is this statement's start, not the transaction's (`now()`, which is what
/// every other statement uses): the lock may have been waited for, and a task must not be
/// stamped `started_at` before the slot it took was free, or its run would seem to overlap
/// the run that freed it.
const RUNNING: &str = "WITH c AS (SELECT coalesce($1::timestamptz, statement_timestamp()) AS now) \
     SELECT count(r.id) AS n, c.now FROM c LEFT JOIN tasks r ON r.namespace = $2 \
       AND r.queue = $3 AND r.state = 'retained' AND r.dies_at > c.now GROUP BY c.now";

/// Whether queue `$3` still has a task a worker could retain at `c.now`.
const MORE: &str = concat!(
    with_now!(),
    "SELECT EXISTS (SELECT 1 FROM tasks r, c WHERE r.namespace = $2 AND r.queue = $3 AND ",
    retainable!(),
    ") AS more"
);

const DEBIT: &str = "UPDATE queues SET rate_tokens = $3, rate_at = $4 \
     WHERE namespace = $1 AND name = $2";

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct MoreRow {
    #[diesel(sql_type = Bool)]
    more: bool,
}

/// Claims from the limited queue `queue` for as many of `workers` as its limits admit, in
/// one transaction holding its row; answers the tasks (the k-th to the k-th worker) and the
/// limit that refused the rest, if tasks were left waiting.
pub(super) async fn claim(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    workers: &[&WorkerName],
    queue: &QueueName,
) -> Result<(Vec<Task>, Option<Limited>), PgError> {
    conn.transaction(async |conn| -> Result<_, PgError> {
        struct Lock;
        struct Running;
        struct Claim;
        struct More;
        let Some(row) = cached::<Lock, _>(
            diesel::sql_query(LOCK)
                .bind::<Text, _>(ns.as_str())
                .bind::<Text, _>(queue.as_str()),
        )
        .load::<LockRow>(conn)
        .await?
        .pop() else {
            return Ok((Vec::new(), None)); // deleted or renamed since it was listed
        };
        if row.paused_at.is_some() {
            return Ok((Vec::new(), None));
        }
        let keyed = |sql, now: Now| {
            diesel::sql_query(sql)
                .bind::<Nullable<Timestamptz>, _>(now)
                .bind::<Text, _>(ns.as_str())
                .bind::<Text, _>(queue.as_str())
        };
        let count: CountRow = cached::<Running, _>(keyed(RUNNING, now))
            .get_result(conn)
            .await?;
        // Every later statement of the claim works at this instant.
        let now = Some(count.now);
        let limits = row.limits();
        let running = u64::try_from(count.n).unwrap_or(0);
        let asked = u32::try_from(workers.len()).unwrap_or(u32::MAX);
        let admission = limits.admit(running, asked, row.bucket(), count.now);
        let granted = admission.granted() as usize;
        let tasks = if granted == 0 {
            Vec::new()
        } else {
            let names: Vec<&str> = workers[..granted].iter().map(|w| w.as_str()).collect();
            let rows: Vec<TaskRow> = cached::<Claim, _>(
                diesel::sql_query(CLAIM_LIMITED)
                    .bind::<Nullable<Timestamptz>, _>(now)
                    .bind::<Text, _>(ns.as_str())
                    .bind::<Array<Text>, _>(names)
                    .bind::<Array<Text>, _>(vec![queue.as_str()])
                    .bind::<BigInt, _>(i64::try_from(granted).unwrap_or(i64::MAX)),
            )
            .load(conn)
            .await?;
            into_tasks(rows, Task::claim_order)?
        };
        let taken = u32::try_from(tasks.len()).unwrap_or(u32::MAX);
        let more = if tasks.len() == granted && granted < workers.len() {
            let more: MoreRow = cached::<More, _>(keyed(MORE, now)).get_result(conn).await?;
            more.more
        } else {
            false
        };
        if let Some(b) = admission.bucket_after(taken) {
            struct Debit;
            cached::<Debit, _>(
                diesel::sql_query(DEBIT)
                    .bind::<Text, _>(ns.as_str())
                    .bind::<Text, _>(queue.as_str())
                    .bind::<Double, _>(b.tokens)
                    .bind::<Timestamptz, _>(b.at),
            )
            .execute(conn)
            .await?;
        }
        let refused = admission.refused_by(taken, more).map(|limit| Limited {
            queue: queue.clone(),
            limit,
            retry_in: admission.next_token_in(taken),
        });
        Ok((tasks, refused))
    })
    .await
}
