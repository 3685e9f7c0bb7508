//! Creating tasks: one `INSERT … SELECT … FROM unnest(…)` whatever the batch size (domain:
//! `Task::create`).

use super::TaskRow;
use crate::cached::cached;
use crate::error::PgError;
use crate::schema::tasks;
use crate::sql::{Now, plus, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Namespace, NewTask, QueueName, Task};
use pgqueue_ports::StoreError;
use serde_json::Value;

/// Inserts all rows in one statement from two arrays (`unnest ... WITH ORDINALITY` keeps the
/// caller's order, so ids follow it), reading the queue's policy in the same statement, and
/// notifies `task:<ns>:<queue>` from it when something was inserted: a rolled-back insert
/// therefore wakes nobody. The queue's row is locked `FOR KEY SHARE` (what a foreign key's
/// check would take, but once per statement rather than once per row): a concurrent delete
/// or rename of the queue waits for this insert to commit and then carries its tasks, or
/// goes first and this insert finds no queue.
macro_rules! create_sql {
    ($tail:literal) => {
        concat!(
            with_now!(),
            ", q AS (SELECT * FROM queues WHERE namespace = $2 AND name = $3 FOR KEY SHARE), \
             ins AS ( \
               INSERT INTO tasks (namespace, queue, payload, created_at, delayed_at, dies_at, \
                                  retries, max_retries, state, finished_at) \
               SELECT q.namespace, q.name, n.payload, c.now, n.delayed_at, ",
            plus!("greatest(coalesce(n.delayed_at, c.now), c.now)", "q.ttl"),
            ", q.retries, q.retries, \
                      CASE WHEN q.retries = 0 THEN 'failed' ELSE 'new' END, \
                      CASE WHEN q.retries = 0 THEN c.now END \
               FROM unnest($4::jsonb[], $5::timestamptz[]) WITH ORDINALITY AS n(payload, delayed_at, ord) \
               CROSS JOIN q CROSS JOIN c \
               ORDER BY n.ord \
               RETURNING id, created_at, delayed_at, finished_at, dies_at, retries, max_retries, \
                         state) \
             SELECT ins.*, c.now AS now FROM ins CROSS JOIN c",
            $tail
        )
    };
}

/// The insert, notifying its queue's channel when it inserted something.
const CREATE: &str = create_sql!(
    " CROSS JOIN (SELECT pg_notify('pgqueue', 'task:' || $2 || ':' || $3) \
                  FROM (SELECT 1 FROM ins LIMIT 1) AS one) AS notified"
);
/// The insert without a wake-up (the caller sends one later; see `debounce.rs`).
const CREATE_QUIET: &str = create_sql!("");

/// What the insert returns: only what the database decided. Payloads (and everything a new
/// task leaves empty) are not sent back: the caller has them, and parsing a batch's payloads
/// back out of the database cost more than the rest of the answer.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = tasks)]
struct CreatedRow {
    id: i64,
    created_at: DateTime<Utc>,
    delayed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    dies_at: DateTime<Utc>,
    retries: i32,
    max_retries: i32,
    state: String,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

impl CreatedRow {
    /// The created task: this row's columns, the rest as a new task has them.
    fn into_task(self, ns: &Namespace, queue: &QueueName, payload: Value) -> Result<Task, PgError> {
        TaskRow {
            id: self.id,
            namespace: ns.as_str().to_string(),
            queue: queue.as_str().to_string(),
            payload,
            result: None,
            worker: None,
            created_at: self.created_at,
            delayed_at: self.delayed_at,
            started_at: None,
            finished_at: self.finished_at,
            dies_at: self.dies_at,
            lease_expires_at: None,
            retries: self.retries,
            max_retries: self.max_retries,
            state: self.state,
            now: self.now,
        }
        .into_task()
    }
}

/// Creates tasks on `conn`, inside whatever transaction the caller has open (or none);
/// `notify`: wake the queue's workers from the statement itself (else the caller does).
pub(crate) async fn create(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    new: &[NewTask],
    notify: bool,
) -> Result<Vec<Task>, PgError> {
    if new.is_empty() {
        crate::queues::get(conn, ns, queue).await?;
        return Ok(Vec::new());
    }
    let payloads: Vec<&Value> = new.iter().map(NewTask::payload).collect();
    let delays: Vec<Option<DateTime<Utc>>> = new.iter().map(NewTask::delayed_at).collect();
    /// Marks the insert as one prepared statement per connection: single-task creates are
    /// the enqueue hot path.
    struct CreateTasks;
    struct CreateTasksQuietly;
    let statement = |sql| {
        diesel::sql_query(sql)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Jsonb>, _>(payloads)
            .bind::<Array<Nullable<Timestamptz>>, _>(delays)
    };
    let mut rows: Vec<CreatedRow> = if notify {
        cached::<CreateTasks, _>(statement(CREATE))
            .load(conn)
            .await?
    } else {
        cached::<CreateTasksQuietly, _>(statement(CREATE_QUIET))
            .load(conn)
            .await?
    };
    if rows.is_empty() {
        return Err(StoreError::not_found("queue", queue).into());
    }
    if rows.len() != new.len() {
        return Err(PgError::Store(StoreError::Unavailable(
            format!("created {} tasks of {}", rows.len(), new.len()).into(),
        )));
    }
    // Ids were drawn in the caller's order (the insert is ordered by ordinality).
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .zip(new)
        .map(|(row, n)| row.into_task(ns, queue, n.payload().clone()))
        .collect()
}
