//! Claims from a queue with `max_running` or `rate` (domain: `Limits::admit`), exact across
//! every process, in two statements and no explicit transaction.
//!
//! Every claim of a limited queue bumps the queue row's `claim_seq` in the statement that
//! retains its tasks. A claim
//!
//! 1. reads, in one snapshot, the queue's limits, bucket and `claim_seq`, how many of its
//!    tasks hold a slot and how many wait ([`READ`]);
//! 2. asks the domain how many it may take;
//! 3. claims that many in one statement ([`CLAIM`]) that first locks the queue row *only if
//!    `claim_seq` is still what step 1 read*, then retains the tasks, bumps `claim_seq` and
//!    debits the bucket.
//!
//! If another claim committed in between, its bump makes the lock find a different
//! `claim_seq` (the lock waits for that claim and then re-reads the row), so this claim
//! retains nothing and starts over. A claim that retains anything therefore decided on a
//! count no other claim has changed since; nothing but a claim makes a task retained, and
//! releases, rescues and cancels only lower the count, so the limit can never be exceeded,
//! however many processes race. Changing a queue's limits bumps `claim_seq` too.
//!
//! The instant of the claim is the read's: a task is never stamped `started_at` before the
//! slot it took was free (the release that freed it committed before the read's snapshot).

use super::claim::{claim_ctes, claim_update, has_limit};
use super::{TaskRow, into_tasks};
use crate::cached::cached;
use crate::error::PgError;
use crate::sql::{Now, lease_end, record_events, retainable, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Bucket, Limits, Namespace, QueueName, Rate, Task, WorkerName};
use pgqueue_ports::{Limited, StoreError};

/// The unpaused limited queues of namespace `$1` among `$2` (empty: all), in name order (the
/// memory adapter's order, byte-wise). Read through the partial index `queues_held`: every
/// claim that comes back short asks, and the names of `$2` are compared with these few
/// queues only, not with every queue of the namespace.
const LIMITED_QUEUES: &str = concat!(
    "SELECT pq.name FROM queues pq WHERE pq.namespace = $1 \
       AND (cardinality($2::text[]) = 0 OR pq.name = ANY($2)) \
       AND pq.paused_at IS NULL AND ",
    has_limit!(),
    " ORDER BY pq.name COLLATE \"C\""
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

/// Queue `$3` of namespace `$2` at `c.now`, in one snapshot: its `claim_seq`, pause, limits
/// and bucket; its tasks that hold a slot (domain: `Task::holds_slot`: retained and not
/// expired; through `tasks_retained`); and its retainable tasks, counted up to `$4`.
const READ: &str = concat!(
    with_now!(),
    "SELECT q.claim_seq, q.paused_at, q.max_running, q.rate_per_second, q.rate_burst, \
       q.rate_tokens, q.rate_at, c.now, \
       (SELECT count(*) FROM tasks r WHERE r.namespace = $2 AND r.queue = $3 \
          AND r.state = 'retained' AND r.dies_at > c.now) AS running, \
       (SELECT count(*) FROM (SELECT 1 FROM tasks r WHERE r.namespace = $2 AND r.queue = $3 \
          AND ",
    retainable!(),
    " LIMIT $4) AS w) AS waiting \
     FROM queues q, c WHERE q.namespace = $2 AND q.name = $3"
);

#[derive(QueryableByName)]
struct ReadRow {
    #[diesel(sql_type = BigInt)]
    claim_seq: i64,
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
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
}

impl ReadRow {
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

/// The claim of one limited queue `$4[1]` at the read's instant: the row is locked only if
/// its `claim_seq` is still `$6` (`gate`); then the claim of [`claim_sql`](mod@super::claim),
/// and the row's `claim_seq` bumped and its bucket debited (domain:
/// `Admission::bucket_after`: `$7`, the refilled tokens at `$8`, less the tasks taken; a
/// claim that took nothing, or a queue without a rate (`$7` NULL), leaves it).
const CLAIM: &str = concat!(
    claim_ctes!(
        ", gate AS (SELECT q.namespace, q.name FROM queues q \
           WHERE q.namespace = $2 AND q.name = $4[1] AND q.claim_seq = $6 FOR UPDATE OF q)",
        "r.queue = $4[1] AND EXISTS (SELECT 1 FROM gate)"
    ),
    ", claimed AS (",
    claim_update!(),
    ")",
    record_events!("claimed", "'retained'"),
    ", taken AS (SELECT count(*) AS n FROM claimed), \
     bump AS (UPDATE queues q SET claim_seq = q.claim_seq + 1, \
       rate_tokens = CASE WHEN $7::float8 IS NULL OR taken.n = 0 THEN q.rate_tokens \
         ELSE $7::float8 - taken.n END, \
       rate_at = CASE WHEN $7::float8 IS NULL OR taken.n = 0 THEN q.rate_at \
         ELSE $8::timestamptz END \
       FROM gate g, taken WHERE q.namespace = g.namespace AND q.name = g.name) \
     SELECT * FROM claimed"
);

/// How often a claim starts over after losing the race for the queue's row before it gives
/// up for now (the caller looks again soon: an empty answer is never wrong).
const ATTEMPTS: usize = 8;

/// Claims from the limited queue `queue` for as many of `workers` as its limits admit;
/// answers the tasks (the k-th to the k-th worker) and the limit that refused the rest, if
/// tasks were left waiting.
pub(super) async fn claim(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    workers: &[&WorkerName],
    queue: &QueueName,
) -> Result<(Vec<Task>, Option<Limited>), PgError> {
    struct Read;
    struct Claim;
    let asked = u32::try_from(workers.len()).unwrap_or(u32::MAX);
    for _ in 0..ATTEMPTS {
        let Some(row) = cached::<Read, _>(
            diesel::sql_query(READ)
                .bind::<Nullable<Timestamptz>, _>(now)
                .bind::<Text, _>(ns.as_str())
                .bind::<Text, _>(queue.as_str())
                .bind::<BigInt, _>(i64::from(asked) + 1),
        )
        .load::<ReadRow>(conn)
        .await?
        .pop() else {
            return Ok((Vec::new(), None)); // deleted or renamed since it was listed
        };
        if row.paused_at.is_some() {
            return Ok((Vec::new(), None));
        }
        let running = u64::try_from(row.running).unwrap_or(0);
        let admission = row.limits().admit(running, asked, row.bucket(), row.now);
        let waiting = usize::try_from(row.waiting).unwrap_or(0);
        let granted = admission.granted() as usize;
        let more = waiting > granted;
        let tasks = if granted == 0 || waiting == 0 {
            Vec::new()
        } else {
            let names: Vec<&str> = workers[..granted].iter().map(|w| w.as_str()).collect();
            let refilled = admission.refilled();
            let rows: Vec<TaskRow> = cached::<Claim, _>(
                // The claim's own instant (unless the clock is pinned): it starts after the
                // read's snapshot, so after every release the read saw commit, and a task's
                // `started_at` is never before the `finished_at` of the one whose slot it took
                // (the read's statement time can be: a release may start and commit between
                // that time and the read's snapshot on a loaded machine).
                diesel::sql_query(CLAIM)
                    .bind::<Nullable<Timestamptz>, _>(now)
                    .bind::<Text, _>(ns.as_str())
                    .bind::<Array<Text>, _>(names)
                    .bind::<Array<Text>, _>(vec![queue.as_str()])
                    .bind::<BigInt, _>(i64::try_from(granted).unwrap_or(i64::MAX))
                    .bind::<BigInt, _>(row.claim_seq)
                    .bind::<Nullable<Double>, _>(refilled.map(|b| b.tokens))
                    .bind::<Nullable<Timestamptz>, _>(refilled.map(|b| b.at)),
            )
            .load(conn)
            .await?;
            if rows.is_empty() {
                continue; // another claim went first (or took the tasks): read again
            }
            into_tasks(rows, Task::claim_order)?
        };
        let taken = u32::try_from(tasks.len()).unwrap_or(u32::MAX);
        let refused = admission.refused_by(taken, more).map(|limit| Limited {
            queue: queue.clone(),
            limit,
            retry_in: admission.next_token_in(taken),
        });
        return Ok((tasks, refused));
    }
    Ok((Vec::new(), None))
}
