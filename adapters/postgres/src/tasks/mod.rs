//! Tasks: the domain's lifecycle rules (`Task::create/retain/release/rescue/heartbeat`,
//! `is_cleanable`) stated as single SQL statements, so that many processes can share one
//! database without read-then-write races.
//!
//! - `create.rs`: the insert, one statement for any batch; `keyed.rs`: the unique-key path;
//! - `claim.rs`: retaining, one statement per claim, in three queue-filter variants;
//!   `floors.rs`: where a one-queue claim starts each priority, kept in the store's memory;
//! - `limited.rs`: retaining from queues with `max_running` or `rate`, taking turns on the
//!   queue's row;
//! - `release.rs`: releases (one or many in one statement) and heartbeats;
//! - `housekeeping.rs`: lease rescue and clean-up.
//!
//! This module reads tasks (one, or a listing) and turns rows into domain tasks.

mod claim;
mod create;
mod floors;
mod housekeeping;
mod keyed;
mod limited;
mod operate;
mod release;

#[cfg(feature = "test-support")]
pub(crate) use claim::claim_statements;
pub(crate) use claim::{QueueFilter, claim};
pub(crate) use create::create;
pub(crate) use floors::Floors;
pub(crate) use housekeeping::{clean_queue, clean_up, rescue};
pub(crate) use operate::{cancel, delete, purge, retry, retry_many};
#[cfg(feature = "test-support")]
pub(crate) use release::release_statement;
pub(crate) use release::{heartbeat, release_many};

use crate::error::PgError;
use crate::schema::tasks;
use crate::sql::{Now, clamp, status_sql, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{
    Namespace, QueueName, State, Task, TaskFilter, TaskId, TaskRecord, UniqueKey,
};
use pgqueue_ports::{Listing, StoreError};
use serde_json::Value;

#[derive(QueryableByName)]
struct NowRow {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

/// The store's now: the pinned instant, or the database's clock.
pub(crate) async fn now(conn: &mut AsyncPgConnection, now: Now) -> Result<DateTime<Utc>, PgError> {
    let row: NowRow = diesel::sql_query(concat!(with_now!(), "SELECT c.now AS now FROM c"))
        .bind::<Nullable<Timestamptz>, _>(now)
        .get_result(conn)
        .await?;
    Ok(row.now)
}

/// One row of `tasks` plus the instant the statement worked at.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = tasks)]
pub(crate) struct TaskRow {
    id: i64,
    namespace: String,
    queue: String,
    payload: Value,
    result: Option<Value>,
    worker: Option<String>,
    created_at: DateTime<Utc>,
    delayed_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    dies_at: DateTime<Utc>,
    lease_expires_at: Option<DateTime<Utc>>,
    retries: i32,
    max_retries: i32,
    state: String,
    priority: i16,
    unique_key: Option<String>,
    cancel_requested_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

impl TaskRow {
    /// The domain task, its status derived at the statement's now.
    pub(crate) fn into_task(self) -> Result<Task, PgError> {
        let corrupt = |what: &str| {
            PgError::Store(StoreError::Unavailable(
                format!("task {} has an invalid {what}", self.id).into(),
            ))
        };
        let record = TaskRecord {
            id: self.id,
            queue: QueueName::parse(&self.queue).map_err(|_| corrupt("queue"))?,
            namespace: Namespace::parse(&self.namespace).map_err(|_| corrupt("namespace"))?,
            payload: self.payload,
            result: self.result,
            worker: self.worker,
            created_at: self.created_at,
            delayed_at: self.delayed_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            dies_at: self.dies_at,
            lease_expires_at: self.lease_expires_at,
            retries: u32::try_from(self.retries).map_err(|_| corrupt("retries"))?,
            max_retries: u32::try_from(self.max_retries).map_err(|_| corrupt("max_retries"))?,
            state: State::parse(&self.state).map_err(|_| corrupt("state"))?,
            priority: self.priority,
            unique_key: self
                .unique_key
                .as_deref()
                .map(UniqueKey::parse)
                .transpose()
                .map_err(|_| corrupt("unique_key"))?,
            cancel_requested_at: self.cancel_requested_at,
        };
        Task::restore(record, self.now)
            .map_err(|e| StoreError::Unavailable(e.to_string().into()).into())
    }
}

/// Rows to tasks, in the order given by `key`.
pub(crate) fn into_tasks<K: Ord>(
    rows: Vec<TaskRow>,
    key: impl Fn(&Task) -> K,
) -> Result<Vec<Task>, PgError> {
    let mut tasks = rows
        .into_iter()
        .map(TaskRow::into_task)
        .collect::<Result<Vec<_>, _>>()?;
    tasks.sort_by_key(key);
    Ok(tasks)
}

const GET: &str = concat!(
    with_now!(),
    "SELECT t.*, c.now AS now FROM tasks t CROSS JOIN c WHERE t.id = $2 AND t.namespace = $3"
);

/// The task, or NotFound.
pub(crate) async fn get(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
) -> Result<Task, PgError> {
    by_id(conn, GET, now, ns, id)
        .await?
        .ok_or_else(|| StoreError::task_not_found(id).into())
        .and_then(TaskRow::into_task)
}

/// Runs `sql`, a statement on one task (`$1` now, `$2` its id, `$3` the namespace) that
/// returns it or nothing.
async fn by_id(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    now: Now,
    ns: &Namespace,
    id: TaskId,
) -> Result<Option<TaskRow>, PgError> {
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(ns.as_str())
        .load(conn)
        .await?
        .pop())
}

/// Runs `sql` (as [`by_id`]) and answers the task it changed; when it changed none, NotFound
/// if there is no such task, else the rule that refused it.
async fn change_by_id(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    refused: pgqueue_domain::Error,
) -> Result<Task, PgError> {
    match by_id(conn, sql, now, ns, id).await? {
        Some(row) => row.into_task(),
        None => {
            get(conn, now, ns, id).await?;
            Err(StoreError::Rule(refused).into())
        }
    }
}

/// The tasks a listing shows: the namespace's, optionally of one queue (`$3`) and in one
/// derived status (`$4`).
macro_rules! list_filter {
    () => {
        concat!(
            "FROM tasks t CROSS JOIN c WHERE t.namespace = $2 \
             AND ($3::text IS NULL OR t.queue = $3) AND ($4::text IS NULL OR ",
            status_sql!(),
            " = $4)"
        )
    };
}

const LIST_COUNT: &str = concat!(with_now!(), "SELECT count(*) AS count ", list_filter!());
const LIST_PAGE: &str = concat!(
    with_now!(),
    "SELECT t.*, c.now AS now ",
    list_filter!(),
    " ORDER BY t.id OFFSET $5 LIMIT $6"
);

/// One page of tasks by id, filtered by queue and derived status, with the total count.
pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    filter: &TaskFilter,
) -> Result<Listing<Task>, PgError> {
    let queue = filter.queue.as_ref().map(|q| q.as_str());
    let status = filter.status.map(|s| s.as_str());
    let count: crate::listing::Count = diesel::sql_query(LIST_COUNT)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Nullable<Text>, _>(queue)
        .bind::<Nullable<Text>, _>(status)
        .get_result(conn)
        .await?;
    let items = if filter.page.limit() == 0 {
        Vec::new()
    } else {
        let rows: Vec<TaskRow> = diesel::sql_query(LIST_PAGE)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Nullable<Text>, _>(queue)
            .bind::<Nullable<Text>, _>(status)
            .bind::<BigInt, _>(clamp(filter.page.offset()))
            .bind::<BigInt, _>(clamp(filter.page.limit()))
            .load(conn)
            .await?;
        into_tasks(rows, |t| t.id)?
    };
    Ok(Listing {
        count: count.total(),
        items,
    })
}
