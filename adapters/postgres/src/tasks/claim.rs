//! Retaining: one statement hands the oldest retainable tasks to their callers (domain:
//! `Task::retain`), locking candidates with `FOR UPDATE SKIP LOCKED` so that concurrent
//! retainers neither block nor share.

use super::floors::Floors;
use super::{TaskRow, into_tasks, limited};
use crate::cached::cached;
use crate::error::PgError;
use crate::sql::{Now, lease_end, recorded, retainable, with_now};
use diesel::sql_types::{Array, BigInt, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Namespace, QueueName, Task, WorkerName};
use pgqueue_ports::Retained;
use std::time::Instant;

/// Which queues a claim takes from. Each variant is its own prepared statement, so each gets
/// a plan that fits it: one queue walks `tasks_retainable_by_queue` in claim order, each
/// priority from its floor (`floors.rs`); any queue, or several, walks `tasks_retainable`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueueFilter<'a> {
    /// Every queue of the namespace.
    Any,
    /// One queue.
    One(&'a QueueName),
    /// Any of several queues.
    Several(&'a [QueueName]),
}

impl<'a> QueueFilter<'a> {
    /// The filter for a retain's queue list (empty: any queue).
    pub(crate) fn of(queues: &'a [QueueName]) -> Self {
        match queues {
            [] => QueueFilter::Any,
            [one] => QueueFilter::One(one),
            several => QueueFilter::Several(several),
        }
    }

    fn names(self) -> Vec<&'a str> {
        match self {
            QueueFilter::Any => Vec::new(),
            QueueFilter::One(q) => vec![q.as_str()],
            QueueFilter::Several(qs) => qs.iter().map(QueueName::as_str).collect(),
        }
    }
}

/// The claim, for `$queues` (a condition on `r.queue` and `$4`, the queue names, that also
/// leaves paused queues out): the first
/// `$5` retainable tasks of namespace `$2` in claim order (domain: `Task::claim_order`:
/// higher priority first, then the oldest), the k-th to the k-th worker name of `$3`
/// (`row_number` over the claim order, joined to the names' ordinality). The order is the
/// claim indexes' own, so the claim walks an index and never sorts.
macro_rules! claim_sql {
    ($($queues:tt)+) => {
        recorded!(claim_ctes!("", $($queues)+), claim_update!(), "'retained'")
    };
}

/// The CTEs of [`claim_sql`]: the instant `c`, then `$before` (more CTEs, each starting
/// with a comma), the workers `w` and the tasks `picked` for `$queues`.
macro_rules! claim_ctes {
    ($before:expr, $($queues:tt)+) => {
        concat!(
            with_now!(),
            $before,
            ", w AS (SELECT w.name, w.k FROM unnest($3::text[]) WITH ORDINALITY AS w(name, k)), \
             picked AS ( \
               SELECT p.id, row_number() OVER (ORDER BY p.priority DESC, p.created_at, p.id) AS k \
               FROM ( \
                 SELECT r.id, r.priority, r.created_at FROM tasks r, c \
                 WHERE r.namespace = $2 AND ",
            $($queues)+,
            " AND ",
            retainable!(),
            " ORDER BY r.priority DESC, r.created_at, r.id LIMIT $5 \
                 FOR UPDATE OF r SKIP LOCKED) p) "
        )
    };
}
pub(super) use claim_ctes;

/// The update of [`claim_sql`]: each picked task retained by its worker (domain:
/// `Task::retain`).
macro_rules! claim_update {
    () => {
        concat!(
            "UPDATE tasks t SET worker = w.name, started_at = c.now, result = NULL, \
               lease_expires_at = ",
            lease_end!(),
            ", state = 'retained' \
             FROM picked p JOIN w ON w.k = p.k, queues q, c \
             WHERE t.id = p.id AND q.namespace = t.namespace AND q.name = t.queue \
             RETURNING t.*, c.now AS now"
        )
    };
}
pub(super) use claim_update;

/// Queue `pq` has a limit (domain: `Limits::any` is false): its tasks are claimed through
/// `limited.rs`, one claim at a time, never by the plain statements below.
macro_rules! has_limit {
    () => {
        "(pq.max_running IS NOT NULL OR pq.rate_per_second IS NOT NULL)"
    };
}
pub(super) use has_limit;

/// Queue `pq`'s tasks are not claimed by the plain statements: it is paused or has a limit
/// ([`has_limit`]). This implies the predicate of the partial index `queues_held` (migration
/// `2026-12-02-030000_queues_held`): a namespace holds few such queues however many it has,
/// and the claim reads them through that index.
macro_rules! held {
    () => {
        concat!("(pq.paused_at IS NOT NULL OR ", has_limit!(), ")")
    };
}

/// Task `r`'s queue is not [`held`]. The held queues of namespace `$2` are read once per
/// statement into a hashed set (a hashed SubPlan), so each candidate row costs one lookup
/// however many queues the namespace has. (The claim used to build an array of the
/// namespace's unpaused, unlimited queues instead: a read of every queue per claim, and a
/// comparison of each candidate with each of them.)
///
/// The queue condition of each claim is wrapped in `IS TRUE`, which keeps it a filter on the
/// walk of the claim index: a bare `r.queue IN (SELECT …)` would become a semi-join, which a
/// generic plan may carry out as a sort of every waiting task of the named queues.
macro_rules! not_held {
    () => {
        concat!(
            "NOT r.queue IN (SELECT pq.name FROM queues pq WHERE pq.namespace = $2 AND ",
            held!(),
            ")"
        )
    };
}

const CLAIM_ANY: &str = claim_sql!(concat!(
    "$4::text[] IS NOT NULL AND (",
    not_held!(),
    ") IS TRUE"
));
/// Several queues: the names of `$4` as a hashed set too, never an array each candidate is
/// compared with element by element (with 1,000 names, ~17 µs per row), nor a probe of
/// `queues` per name (3 ms per claim with 1,000; `tests/it/postgres/plans.rs`).
const CLAIM_SEVERAL: &str = claim_sql!(concat!(
    "(r.queue IN (SELECT n.name FROM unnest($4::text[]) AS n(name)) AND ",
    not_held!(),
    ") IS TRUE"
));

/// Task `r` is late: it becomes retainable after its creation (a failed attempt's retry, a
/// delayed task), so it may wait below a lane's floor. The predicate of `tasks_late_by_queue`
/// (migration `2026-12-04-000000_tasks_late`), which the claim reads below each floor.
macro_rules! late {
    () => {
        "(r.state = 'retry' OR (r.state = 'new' AND r.delayed_at IS NOT NULL))"
    };
}

/// One arm of the floored claim: the retainable tasks of queue `$4[1]` matching `$cond`, in
/// claim order, each locked as the claim pulls it (`SKIP LOCKED`). Its own `LIMIT` makes it
/// planned as the walk of an index it is (planned alone, an arm without one could sort).
macro_rules! floored_arm {
    ($($cond:tt)+) => {
        concat!(
            "SELECT * FROM (SELECT r.id, r.priority, r.created_at FROM tasks r, c \
               WHERE r.namespace = $2 AND r.queue = $4[1] AND ",
            $($cond)+,
            " AND ",
            retainable!(),
            " ORDER BY r.priority DESC, r.created_at, r.id LIMIT $5 FOR UPDATE OF r SKIP LOCKED) a"
        )
    };
}

/// One queue, walked from floors (`floors.rs`). `$6` are the priorities this store knows
/// tasks of, highest first, `$7`/`$8` each one's floor (`created_at`, `id` of the last task
/// taken from it). The claim reads, highest priority first: the tasks above the highest
/// known priority; then for each known lane its late tasks at or below its floor
/// ([`late`]), the lane above its floor, and the priorities between it and the next known
/// one. Each range holds none of the others' entries (so none of the dead ones a held
/// horizon keeps behind the floors), and their concatenation is the claim order. The lanes
/// are the outer side of a nested loop under the `LIMIT`, so a row is locked only when it
/// is taken. The lanes and gaps come from `unnest`s of `$6` (the planner guesses 10 rows
/// for each) and one row, never a `generate_series` (guessed 1,000 rows in a generic plan:
/// with a deep queue's statistics that put the estimate past `jit_above_cost`, and each
/// claim then spent ~100 ms compiling itself; the soak's `idle_in_tx`, 2026-12-04). With
/// no lane known this is the plain one-queue claim. A paused or limited
/// queue makes the whole walk a no-op (a one-time filter, which leaves the scans' estimates
/// alone).
const CLAIM_ONE: &str = recorded!(
    concat!(
        with_now!(),
        ", w AS (SELECT w.name, w.k FROM unnest($3::text[]) WITH ORDINALITY AS w(name, k)), \
         picked AS ( \
           SELECT x.id, row_number() OVER (ORDER BY x.priority DESC, x.created_at, x.id) AS k \
           FROM (SELECT x.* FROM ( \
             SELECT 2 * k.i AS ord, true AS known, k.p AS prio, k.fc, k.fid, 0 AS lo, 0 AS hi \
               FROM unnest($6::smallint[], $7::timestamptz[], $8::bigint[]) WITH ORDINALITY AS k(p, fc, fid, i) \
             UNION ALL \
             SELECT 2 * g.i - 1, false, 0::smallint, NULL, NULL, g.p, coalesce(($6::smallint[])[g.i - 1], 32768) \
               FROM unnest($6::smallint[]) WITH ORDINALITY AS g(p, i) \
             UNION ALL \
             SELECT 2 * coalesce(cardinality($6::smallint[]), 0) + 1, false, 0::smallint, NULL, NULL, \
                    -32769, coalesce(($6::smallint[])[cardinality($6::smallint[])], 32768) \
             ORDER BY 1) l \
           CROSS JOIN LATERAL (",
        floored_arm!(
            "l.known AND r.priority = l.prio AND ",
            late!(),
            " AND (r.created_at, r.id) <= (l.fc, l.fid)"
        ),
        " UNION ALL ",
        floored_arm!("l.known AND r.priority = l.prio AND (r.created_at, r.id) > (l.fc, l.fid)"),
        " UNION ALL ",
        floored_arm!("NOT l.known AND r.priority > l.lo AND r.priority < l.hi"),
        ") x WHERE NOT EXISTS (SELECT 1 FROM queues pq WHERE pq.namespace = $2 \
             AND pq.name = $4[1] AND ",
        held!(),
        ") LIMIT $5) x) "
    ),
    claim_update!(),
    "'retained'"
);

/// Retains one task for each of `workers` (a name may repeat: a worker that buffers asks for
/// several), in claim order; task `i` of the answer goes to `workers[i]`, and the answer is
/// shorter when fewer tasks are available. Unlimited queues first, in one statement; only an
/// answer that came back short looks for limited queues (a drain pays nothing for them).
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    workers: &[&WorkerName],
    queues: QueueFilter<'_>,
    floors: &Floors,
) -> Result<Retained, PgError> {
    let mut out = Retained {
        tasks: claim_unlimited(conn, now, ns, workers, queues, floors).await?,
        limited: Vec::new(),
    };
    if out.tasks.len() < workers.len() {
        for queue in limited::queues(conn, ns, &queues.names()).await? {
            let rest = &workers[out.tasks.len()..];
            if rest.is_empty() {
                break;
            }
            let (mut tasks, refused) = limited::claim(conn, now, ns, rest, &queue).await?;
            out.tasks.append(&mut tasks);
            out.limited.extend(refused);
        }
    }
    Ok(out)
}

/// The claim of [`claim`] over unlimited, unpaused queues only.
async fn claim_unlimited(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    workers: &[&WorkerName],
    queues: QueueFilter<'_>,
    floors: &Floors,
) -> Result<Vec<Task>, PgError> {
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = workers.iter().map(|w| w.as_str()).collect();
    let limit = i64::try_from(names.len()).unwrap_or(i64::MAX);
    let statement = |sql| {
        diesel::sql_query(sql)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Array<Text>, _>(names)
            .bind::<Array<Text>, _>(queues.names())
            .bind::<BigInt, _>(limit)
    };
    struct Any;
    struct One;
    struct Several;
    let mut seen = None;
    let rows: Vec<TaskRow> = match queues {
        QueueFilter::Any => cached::<Any, _>(statement(CLAIM_ANY)).load(conn).await?,
        QueueFilter::One(queue) => {
            let (lanes, epoch) = floors.lanes(ns, queue, Instant::now());
            seen = Some(epoch);
            let rows = cached::<One, _>(
                statement(CLAIM_ONE)
                    .bind::<Array<SmallInt>, _>(lanes.priorities)
                    .bind::<Array<Timestamptz>, _>(lanes.created_at)
                    .bind::<Array<BigInt>, _>(lanes.ids),
            )
            .load(conn)
            .await;
            match rows {
                Ok(rows) => rows,
                Err(e) => {
                    // It may have rolled back after taking tasks past the floors.
                    floors.forget(ns, queue);
                    return Err(e.into());
                }
            }
        }
        QueueFilter::Several(_) => {
            cached::<Several, _>(statement(CLAIM_SEVERAL))
                .load(conn)
                .await?
        }
    };
    // Claim order is the names' order: the k-th in claim order went to the k-th name.
    let tasks = into_tasks(rows, Task::claim_order)?;
    if let (QueueFilter::One(queue), Some(seen)) = (queues, seen) {
        floors.learn(ns, queue, &tasks, seen, Instant::now());
    }
    Ok(tasks)
}

/// The three variants' text, for the plan tests (`support::claim_statements`).
#[cfg(feature = "test-support")]
pub(crate) fn claim_statements() -> [(&'static str, &'static str); 3] {
    [
        ("any", CLAIM_ANY),
        ("one", CLAIM_ONE),
        ("several", CLAIM_SEVERAL),
    ]
}
