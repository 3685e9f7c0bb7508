//! What operators do to tasks (domain: `Task::cancel`, `Task::retry`,
//! `Task::check_deletable`): each one statement on the row, with a read to explain a refusal.

use super::keyed::{free_expired_keys, lock_keys};
use super::{TaskRow, change_by_id, get};
use crate::error::{PgError, is_unique_violation};
use crate::listing::Count;
use crate::sql::{Now, open_states, plus, record_events, recorded, status_sql, with_now};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Error as DomainError, Namespace, QueueName, Status, Task, TaskId};
use pgqueue_ports::StoreError;

/// Cancel: a waiting task ends `cancelled` now; a retained one is asked to stop (the first
/// request is kept). Only tasks that have not ended (nor expired) match.
const CANCEL: &str = recorded!(
    with_now!(),
    concat!(
        "UPDATE tasks t SET \
           state = CASE WHEN t.state = 'retained' THEN t.state ELSE 'cancelled' END, \
           finished_at = CASE WHEN t.state = 'retained' THEN t.finished_at ELSE c.now END, \
           cancel_requested_at = CASE WHEN t.state = 'retained' \
                                      THEN coalesce(t.cancel_requested_at, c.now) END \
         FROM c WHERE t.id = $2 AND t.namespace = $3 AND t.state IN ",
        open_states!(),
        " AND t.dies_at > c.now RETURNING t.*, c.now AS now"
    ),
    "(CASE WHEN ev.state = 'cancelled' THEN 'cancelled' END)"
);

/// Cancels a task, or explains why not.
pub(crate) async fn cancel(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
) -> Result<Task, PgError> {
    change_by_id(conn, CANCEL, now, ns, id, DomainError::TaskEnded).await
}

/// The retry of the tasks `$3` (domain: `Task::retry`): ended without doing the work, back
/// to `new` with the queue's attempts now, dying one `ttl` from now. A task whose unique key
/// a task outside `$3` holds is left alone.
const RETRY: &str = recorded!(
    with_now!(),
    concat!(
        "UPDATE tasks t SET \
       state = CASE WHEN q.retries = 0 THEN 'failed' ELSE 'new' END, \
       retries = q.retries, max_retries = q.retries, delayed_at = NULL, started_at = NULL, \
       finished_at = CASE WHEN q.retries = 0 THEN c.now END, worker = NULL, result = NULL, \
       lease_expires_at = NULL, cancel_requested_at = NULL, dies_at = ",
        plus!("c.now", "q.ttl"),
        " FROM queues q, c WHERE t.id = ANY($3) AND t.namespace = $2 \
       AND q.namespace = t.namespace AND q.name = t.queue AND ",
        status_sql!(),
        " IN ('failed', 'expired', 'cancelled') \
       AND NOT EXISTS (SELECT 1 FROM tasks h WHERE h.namespace = t.namespace \
         AND h.queue = t.queue AND h.unique_key = t.unique_key AND h.state IN ",
        open_states!(),
        " AND h.dies_at > c.now AND NOT h.id = ANY($3)) \
     RETURNING t.*, c.now AS now"
    ),
    "'retry'"
);

async fn retry_rows(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    ids: &[i64],
) -> Result<Vec<TaskRow>, PgError> {
    Ok(diesel::sql_query(RETRY)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .await?)
}

/// Retries one task: with a key, first under the key's lock, expired tasks give the key up;
/// then the retry applies unless a live task holds it. `Ok(None)`: it did not apply.
async fn retry_one(
    conn: &mut AsyncPgConnection,
    now: Now,
    task: &Task,
) -> Result<Option<Task>, PgError> {
    if let Some(key) = task.unique_key() {
        lock_keys(conn, &task.namespace, &task.queue, &[key.as_str()]).await?;
        free_expired_keys(
            conn,
            now,
            &task.namespace,
            &task.queue,
            &[key.as_str()],
            &[task.id],
        )
        .await?;
        // A single create takes no advisory lock (see `create::CREATE_ONE_KEYED`): one may
        // have taken the key since this statement's snapshot, and then the unique index
        // refuses the retry. That is the key being held, not a failure; the savepoint keeps
        // the caller's transaction (a redrive) usable.
        return match conn
            .transaction(async |conn| retry_rows(conn, now, &task.namespace, &[task.id]).await)
            .await
        {
            Ok(mut rows) => rows.pop().map(TaskRow::into_task).transpose(),
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e),
        };
    }
    retry_rows(conn, now, &task.namespace, &[task.id])
        .await?
        .pop()
        .map(TaskRow::into_task)
        .transpose()
}

fn key_taken() -> PgError {
    StoreError::Conflict("task's unique_key is held by another waiting task".into()).into()
}

/// Retries one ended task, or explains why not.
pub(crate) async fn retry(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
) -> Result<Task, PgError> {
    conn.transaction(async |conn| {
        let task = get(conn, now, ns, id).await?;
        match task.status() {
            s if s.is_retryable() => {}
            Status::Released => return Err(StoreError::Rule(DomainError::NotRetryable).into()),
            _ => return Err(StoreError::Rule(DomainError::NotEnded).into()),
        }
        retry_one(conn, now, &task).await?.ok_or_else(key_taken)
    })
    .await
}

#[derive(QueryableByName)]
struct Candidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    unique_key: Option<String>,
}

const CANDIDATES: &str = concat!(
    with_now!(),
    "SELECT t.id, t.unique_key FROM tasks t CROSS JOIN c \
     WHERE t.namespace = $2 AND t.queue = $3 AND ",
    status_sql!(),
    " = ANY($4) ORDER BY t.id"
);

/// Redrive: retries up to `limit` of the queue's tasks in `statuses`, oldest id first, in one
/// transaction. Tasks without a key are retried in one statement; each task with a key is
/// retried on its own, under its key's lock, and skipped when a live task holds the key
/// (retrying tasks with keys one by one in id order gives every adapter the same answer).
pub(crate) async fn retry_many(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    statuses: &[Status],
    limit: u32,
) -> Result<u64, PgError> {
    crate::queues::get(conn, ns, queue).await?;
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    conn.transaction(async |conn| {
        let candidates: Vec<Candidate> = diesel::sql_query(CANDIDATES)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Text>, _>(&statuses)
            .load(conn)
            .await?;
        let mut keyless = Vec::new();
        let mut retried = 0u64;
        for c in candidates {
            if retried >= u64::from(limit) {
                break;
            }
            if c.unique_key.is_none() {
                keyless.push(c.id);
                retried += 1;
                continue;
            }
            // Read again: retrying an earlier task may have taken this one's key from it.
            let task = get(conn, now, ns, c.id).await?;
            if retry_one(conn, now, &task).await?.is_some() {
                retried += 1;
            }
        }
        let done = retry_rows(conn, now, ns, &keyless).await?.len();
        if done != keyless.len() {
            return Err(StoreError::Unavailable(
                format!("retried {done} of {} tasks", keyless.len()).into(),
            )
            .into());
        }
        if retried > 0 {
            crate::listen::notify_below_floors(conn, ns, queue).await?;
        }
        Ok(retried)
    })
    .await
}

const DELETE: &str = recorded!(
    with_now!(),
    "DELETE FROM tasks t USING c WHERE t.id = $2 AND t.namespace = $3 \
       AND t.state <> 'retained' RETURNING t.*, c.now AS now",
    "'deleted'"
);

/// Deletes a task no worker holds, or explains why not.
pub(crate) async fn delete(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
) -> Result<Task, PgError> {
    change_by_id(conn, DELETE, now, ns, id, DomainError::StillRetained).await
}

const PURGE: &str = concat!(
    with_now!(),
    ", changed AS (DELETE FROM tasks t USING c WHERE t.namespace = $2 \
       AND ($3::text IS NULL OR t.queue = $3) AND t.state <> 'retained' AND ",
    status_sql!(),
    " = ANY($4) RETURNING t.id, t.namespace, t.queue, t.state, t.dies_at)",
    record_events!("changed", "'deleted'"),
    " SELECT count(*) AS count FROM changed"
);

/// Deletes the namespace's tasks in `statuses` (never a retained one), of one queue or all.
pub(crate) async fn purge(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: Option<&QueueName>,
    statuses: &[Status],
) -> Result<u64, PgError> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    let n = diesel::sql_query(PURGE)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Nullable<Text>, _>(queue.map(QueueName::as_str))
        .bind::<Array<Text>, _>(statuses)
        .get_result::<Count>(conn)
        .await?;
    Ok(n.total())
}
