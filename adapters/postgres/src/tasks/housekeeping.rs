//! Housekeeping across every namespace: lease rescue (domain: `Task::rescue`) and clean-up
//! (domain: `Task::is_cleanable`), each claimed with `SKIP LOCKED` so that several servers
//! share the work; and `clean_queue`, an operator's immediate clean-up of one queue.

use super::{TaskRow, into_tasks};
use crate::error::PgError;
use crate::listing::Count;
use crate::sql::{
    Now, end_attempt_set, ended_states, open_states, plus, record_events, recorded, with_now,
};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Namespace, QueueName, State, Task};

/// Lease rescue: retained rows whose lease passed and that have not expired, in every
/// namespace, each counted as a failed attempt with `{"error":"lease expired"}`.
const RESCUE: &str = recorded!(
    with_now!(),
    concat!(
        "UPDATE tasks t SET ",
        end_attempt_set!("true", "'{\"error\":\"lease expired\"}'::jsonb"),
        " FROM queues q, c \
         WHERE q.namespace = t.namespace AND q.name = t.queue AND t.id IN ( \
           SELECT r.id FROM tasks r, c \
           WHERE r.state = 'retained' AND r.lease_expires_at <= c.now AND r.dies_at > c.now \
           ORDER BY r.lease_expires_at, r.id LIMIT $2 \
           FOR UPDATE OF r SKIP LOCKED) \
         RETURNING t.*, c.now AS now"
    ),
    "'rescued'"
);

/// Rescues up to `limit` tasks; returned by id.
pub(crate) async fn rescue(
    conn: &mut AsyncPgConnection,
    now: Now,
    limit: u32,
) -> Result<Vec<Task>, PgError> {
    let rows: Vec<TaskRow> = diesel::sql_query(RESCUE)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<BigInt, _>(i64::from(limit))
        .load(conn)
        .await?;
    let tasks = into_tasks(rows, |t| t.id)?;
    // Rescued tasks may be retainable again: wake their queues (after the rescue committed).
    let mut woken: Vec<String> = tasks
        .iter()
        .filter(|t| t.state() == State::Retry)
        .map(|t| format!("task:{}:{}", t.namespace, t.queue))
        .collect();
    woken.sort();
    woken.dedup();
    if !woken.is_empty()
        && let Err(e) = crate::listen::notify_all(conn, woken).await
    {
        // A lost wake-up only delays the next retain until a poll; the rescue stands.
        tracing::warn!(error = %e, "cannot notify rescued tasks");
    }
    Ok(tasks)
}

/// Clean-up: tasks that ended — finished at `finished_at`, or expired at `dies_at` — at least
/// their queue's `ttl` ago, oldest id first (the oldest tasks are the likeliest to have
/// ended, and every adapter deletes the same ones).
const CLEAN_UP: &str = concat!(
    with_now!(),
    ", changed AS (DELETE FROM tasks d WHERE d.id IN ( \
       SELECT t.id FROM tasks t JOIN queues q ON q.namespace = t.namespace AND q.name = t.queue \
       CROSS JOIN c \
       WHERE (t.state IN ",
    ended_states!(),
    " AND ",
    plus!("t.finished_at", "q.ttl"),
    " <= c.now) OR (t.state IN ",
    open_states!(),
    " AND ",
    plus!("t.dies_at", "q.ttl"),
    " <= c.now) ORDER BY t.id LIMIT $2 FOR UPDATE OF t SKIP LOCKED) \
     RETURNING d.id, d.namespace, d.queue, d.state, d.dies_at)",
    record_events!(
        "changed",
        concat!(
            "(CASE WHEN ev.state IN ",
            open_states!(),
            " THEN 'expired' END)"
        )
    ),
    " SELECT count(*) AS count FROM changed"
);

/// Deletes up to `limit` cleanable tasks in every namespace; returns how many.
pub(crate) async fn clean_up(
    conn: &mut AsyncPgConnection,
    now: Now,
    limit: u32,
) -> Result<u64, PgError> {
    let n = diesel::sql_query(CLEAN_UP)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<BigInt, _>(i64::from(limit))
        .get_result::<Count>(conn)
        .await?;
    Ok(n.total())
}

const CLEAN_QUEUE: &str = recorded!(
    with_now!(),
    concat!(
        "DELETE FROM tasks t USING c WHERE t.namespace = $2 AND t.queue = $3 \
           AND (t.state IN ",
        ended_states!(),
        " OR t.dies_at <= c.now) RETURNING t.*, c.now AS now"
    ),
    "'deleted'"
);

/// Deletes the queue's ended tasks now; returned by id.
pub(crate) async fn clean_queue(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
) -> Result<Vec<Task>, PgError> {
    let rows: Vec<TaskRow> = diesel::sql_query(CLEAN_QUEUE)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(queue.as_str())
        .load(conn)
        .await?;
    into_tasks(rows, |t| t.id)
}
