//! Tasks: the domain's lifecycle rules (`Task::create/retain/release/rescue/heartbeat`,
//! `is_cleanable`) stated as single SQL statements, so that many processes can share one
//! database without read-then-write races.
//!
//! Every statement takes the clock's answer as `$1` and works at `coalesce($1, now())` (the
//! CTE `c`), and returns that instant next to the rows so that the status of each returned
//! task is derived in Rust with `Status::derive`, exactly as the domain does.

use crate::cached::cached;
use crate::error::PgError;
use crate::schema::tasks;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{
    Namespace, NewTask, Outcome, OutcomeKind, QueueName, State, Status, Task, TaskFilter, TaskId,
    WorkerName,
};
use pgqueue_ports::{Listing, StoreError};
use serde_json::Value;

/// The instant every statement works at.
pub(crate) type Now = Option<DateTime<Utc>>;

/// The derived status of task `t` at `c.now`, the SQL twin of `Status::derive`.
macro_rules! status_sql {
    () => {
        "(CASE WHEN t.state IN ('released', 'failed') THEN t.state \
              WHEN t.dies_at <= c.now THEN 'expired' ELSE t.state END)"
    };
}
pub(crate) use status_sql;

/// `c.now` as the first CTE of every statement.
macro_rules! with_now {
    () => {
        "WITH c AS (SELECT coalesce($1::timestamptz, now()) AS now) "
    };
}
pub(crate) use with_now;

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
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

impl TaskRow {
    /// The domain task, its status derived at the statement's now.
    pub(crate) fn into_task(self) -> Result<Task, PgError> {
        let corrupt = |what: &str| {
            PgError::Store(StoreError::Unavailable(format!(
                "task {} has an invalid {what}",
                self.id
            )))
        };
        let state = State::parse(&self.state).map_err(|_| corrupt("state"))?;
        let task = Task {
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
            status: Status::New,
            state,
        };
        Ok(task.observe(self.now))
    }
}

/// Rows to tasks, in the order given by `key`.
fn into_tasks<K: Ord>(rows: Vec<TaskRow>, key: impl Fn(&Task) -> K) -> Result<Vec<Task>, PgError> {
    let mut tasks = rows
        .into_iter()
        .map(TaskRow::into_task)
        .collect::<Result<Vec<_>, _>>()?;
    tasks.sort_by_key(key);
    Ok(tasks)
}

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
               SELECT q.namespace, q.name, n.payload, c.now, n.delayed_at, \
                      greatest(coalesce(n.delayed_at, c.now), c.now) \
                        + (q.ttl / 1000) * interval '1 microsecond', \
                      q.retries, q.retries, \
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
    let payloads: Vec<&Value> = new.iter().map(|n| &n.payload).collect();
    let delays: Vec<Option<DateTime<Utc>>> = new.iter().map(|n| n.delayed_at).collect();
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
        return Err(PgError::Store(StoreError::Unavailable(format!(
            "created {} tasks of {}",
            rows.len(),
            new.len()
        ))));
    }
    // Ids were drawn in the caller's order (the insert is ordered by ordinality).
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .zip(new)
        .map(|(row, n)| row.into_task(ns, queue, n.payload.clone()))
        .collect()
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
    let row: Option<TaskRow> = diesel::sql_query(GET)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(ns.as_str())
        .load(conn)
        .await?
        .pop();
    row.ok_or_else(|| StoreError::task_not_found(id).into())
        .and_then(TaskRow::into_task)
}

const LIST_FILTER: &str = "FROM tasks t CROSS JOIN c WHERE t.namespace = $2 \
     AND ($3::text IS NULL OR t.queue = $3) AND ($4::text IS NULL OR ";

/// One page of tasks by id, filtered by queue and derived status, with the total count.
pub(crate) async fn list(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    filter: &TaskFilter,
) -> Result<Listing<Task>, PgError> {
    let queue = filter.queue.as_ref().map(|q| q.as_str().to_string());
    let status = filter.status.map(|s| s.as_str());
    let count_sql = format!(
        "{}SELECT count(*) AS count {LIST_FILTER}{} = $4)",
        with_now!(),
        status_sql!()
    );
    let count: crate::listing::Count = diesel::sql_query(count_sql)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Nullable<Text>, _>(queue.clone())
        .bind::<Nullable<Text>, _>(status)
        .get_result(conn)
        .await?;
    let items = if filter.page.limit == 0 {
        Vec::new()
    } else {
        let page_sql = format!(
            "{}SELECT t.*, c.now AS now {LIST_FILTER}{} = $4) ORDER BY t.id OFFSET $5 LIMIT $6",
            with_now!(),
            status_sql!()
        );
        let rows: Vec<TaskRow> = diesel::sql_query(page_sql)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Nullable<Text>, _>(queue)
            .bind::<Nullable<Text>, _>(status)
            .bind::<BigInt, _>(clamp(filter.page.offset))
            .bind::<BigInt, _>(clamp(filter.page.limit))
            .load(conn)
            .await?;
        into_tasks(rows, |t| t.id)?
    };
    Ok(Listing {
        count: count.total(),
        items,
    })
}

/// A page bound as SQL's BIGINT.
pub(crate) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The claim: the oldest retainable rows, locked with `SKIP LOCKED` so concurrent retainers
/// neither block nor share, updated in the same statement (domain rule `Task::retain`).
/// `$queue_filter` narrows the candidates by `$4`; each variant is its own prepared statement
/// so that its plan fits: one queue walks `tasks_retainable_by_queue` in claim order, any queue
/// (or several) walks `tasks_retainable`.
macro_rules! retain_sql {
    ($queue_filter:literal) => {
        concat!(
            with_now!(),
            "UPDATE tasks t SET worker = $3, started_at = c.now, result = NULL, \
               lease_expires_at = c.now + (q.lease / 1000) * interval '1 microsecond', \
               state = 'retained' \
             FROM queues q, c \
             WHERE q.namespace = t.namespace AND q.name = t.queue AND t.id IN ( \
               SELECT r.id FROM tasks r, c \
               WHERE r.namespace = $2 AND r.state IN ('new', 'retry') ",
            $queue_filter,
            " AND (r.delayed_at IS NULL OR r.delayed_at <= c.now) AND r.dies_at > c.now \
               ORDER BY r.created_at, r.id LIMIT $5 \
               FOR UPDATE OF r SKIP LOCKED) \
             RETURNING t.*, c.now AS now"
        )
    };
}

/// Runs the claim statement made by `$sql` (`retain_sql` or `retain_for_sql`) in the variant
/// that fits `queues` (any, one, several: each its own prepared statement, so each gets its
/// own plan), binding `$now`, the namespace, the worker(s) as `$worker_ty`, the queue filter
/// and the limit. Evaluates to the rows, or the query error.
macro_rules! claim {
    ($conn:expr, $sql:ident, ($now:expr, $ns:expr, $worker_ty:ty, $worker:expr, $queues:expr, $limit:expr)) => {{
        struct Any;
        struct One;
        struct Several;
        let result: Result<Vec<TaskRow>, diesel::result::Error> = match $queues {
            [] => {
                cached::<Any, _>(
                    diesel::sql_query($sql!("AND $4::text IS NULL"))
                        .bind::<Nullable<Timestamptz>, _>($now)
                        .bind::<Text, _>($ns.as_str())
                        .bind::<$worker_ty, _>($worker)
                        .bind::<Nullable<Text>, _>(None::<&str>)
                        .bind::<BigInt, _>($limit),
                )
                .load($conn)
                .await
            }
            [queue] => {
                cached::<One, _>(
                    diesel::sql_query($sql!("AND r.queue = $4"))
                        .bind::<Nullable<Timestamptz>, _>($now)
                        .bind::<Text, _>($ns.as_str())
                        .bind::<$worker_ty, _>($worker)
                        .bind::<Text, _>(queue.as_str())
                        .bind::<BigInt, _>($limit),
                )
                .load($conn)
                .await
            }
            several => {
                let names: Vec<&str> = several.iter().map(|q| q.as_str()).collect();
                cached::<Several, _>(
                    diesel::sql_query($sql!("AND r.queue = ANY($4::text[])"))
                        .bind::<Nullable<Timestamptz>, _>($now)
                        .bind::<Text, _>($ns.as_str())
                        .bind::<$worker_ty, _>($worker)
                        .bind::<Array<Text>, _>(names)
                        .bind::<BigInt, _>($limit),
                )
                .load($conn)
                .await
            }
        };
        result
    }};
}

/// Retains up to `limit` tasks for `worker`, oldest first.
pub(crate) async fn retain(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    worker: &WorkerName,
    queues: &[QueueName],
    limit: u32,
) -> Result<Vec<Task>, PgError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::from(limit);
    let rows = claim!(
        conn,
        retain_sql,
        (now, ns, Text, worker.as_str(), queues, limit)
    )?;
    into_tasks(rows, |t| (t.created_at, t.id))
}

/// The claim for several callers at once: like [`retain_sql`], `$5` rows for the `$5` worker
/// names of `$3`, the k-th oldest task to the k-th name (`row_number` over the claim order,
/// joined to the names' ordinality).
macro_rules! retain_for_sql {
    ($queue_filter:literal) => {
        concat!(
            with_now!(),
            ", w AS (SELECT w.name, w.k FROM unnest($3::text[]) WITH ORDINALITY AS w(name, k)), \
             picked AS ( \
               SELECT p.id, row_number() OVER (ORDER BY p.created_at, p.id) AS k FROM ( \
                 SELECT r.id, r.created_at FROM tasks r, c \
                 WHERE r.namespace = $2 AND r.state IN ('new', 'retry') ",
            $queue_filter,
            " AND (r.delayed_at IS NULL OR r.delayed_at <= c.now) AND r.dies_at > c.now \
                 ORDER BY r.created_at, r.id LIMIT $5 \
                 FOR UPDATE OF r SKIP LOCKED) p) \
             UPDATE tasks t SET worker = w.name, started_at = c.now, result = NULL, \
               lease_expires_at = c.now + (q.lease / 1000) * interval '1 microsecond', \
               state = 'retained' \
             FROM picked p JOIN w ON w.k = p.k, queues q, c \
             WHERE t.id = p.id AND q.namespace = t.namespace AND q.name = t.queue \
             RETURNING t.*, c.now AS now"
        )
    };
}

/// Retains one task for each of `workers`, oldest first; task `i` goes to `workers[i]`.
pub(crate) async fn retain_for(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    workers: &[WorkerName],
    queues: &[QueueName],
) -> Result<Vec<Task>, PgError> {
    if workers.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = workers.iter().map(|w| w.as_str()).collect();
    let limit = i64::try_from(names.len()).unwrap_or(i64::MAX);
    let rows = claim!(
        conn,
        retain_for_sql,
        (now, ns, Array<Text>, names, queues, limit)
    )?;
    // Claim order is the names' order: the k-th oldest went to the k-th name.
    into_tasks(rows, |t| (t.created_at, t.id))
}

/// The SET list of a release (domain rules `Task::release` and `Task::fail_attempt`), stated
/// once for every statement that ends an attempt: `$fail` (an SQL boolean) says whether the
/// attempt failed, `$result` is the stored result. Success → `released`. Failure: one attempt
/// used; attempts left → `retry` after `retry_delay × k²` (k = failures so far, this one
/// included), none left → `failed`. Needs `t` (the task), `q` (its queue) and `c` (now).
macro_rules! release_set_sql {
    ($fail:literal, $result:literal) => {
        concat!(
            "retries = CASE WHEN ", $fail, " THEN greatest(t.retries - 1, 0) ELSE t.retries END, \
             result = ", $result, ", lease_expires_at = NULL, \
             state = CASE WHEN NOT ", $fail, " THEN 'released' \
                          WHEN t.retries - 1 > 0 THEN 'retry' ELSE 'failed' END, \
             started_at = CASE WHEN ", $fail, " AND t.retries - 1 > 0 \
                               THEN NULL ELSE t.started_at END, \
             finished_at = CASE WHEN ", $fail, " AND t.retries - 1 > 0 \
                                THEN t.finished_at ELSE c.now END, \
             delayed_at = CASE WHEN ", $fail, " AND t.retries - 1 > 0 THEN c.now + \
               (least(q.retry_delay::numeric * (t.max_retries - t.retries + 1) \
                        * (t.max_retries - t.retries + 1), 9223372036854775807)::bigint / 1000) \
               * interval '1 microsecond' \
               ELSE t.delayed_at END"
        )
    };
}

/// The SET list of a failed attempt with the error payload in `$err`.
macro_rules! fail_attempt_sql {
    ($err:literal) => {
        release_set_sql!("true", $err)
    };
}

/// Release (domain rule `Task::release`), fenced on `$5` when a worker is named.
const RELEASE_SUCCESS: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET state = 'released', finished_at = c.now, lease_expires_at = NULL, \
       result = $4 \
     FROM c WHERE t.id = $2 AND t.namespace = $3 AND t.state = 'retained' \
       AND ($5::text IS NULL OR t.worker = $5) \
     RETURNING t.*, c.now AS now"
);

const RELEASE_FAILURE: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET ",
    fail_attempt_sql!("$4"),
    " FROM queues q, c WHERE t.id = $2 AND t.namespace = $3 AND t.state = 'retained' \
       AND ($5::text IS NULL OR t.worker = $5) \
       AND q.namespace = t.namespace AND q.name = t.queue \
     RETURNING t.*, c.now AS now"
);

/// Releases one task with `outcome`; explains a refusal by reading the row once.
pub(crate) async fn release(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    outcome: &Outcome,
) -> Result<Task, PgError> {
    struct ReleaseSuccess;
    struct ReleaseFailure;
    let worker = outcome.worker.as_ref().map(|w| w.as_str());
    let statement = |sql| {
        diesel::sql_query(sql)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(ns.as_str())
            .bind::<Nullable<Jsonb>, _>(outcome.result.clone())
            .bind::<Nullable<Text>, _>(worker)
    };
    let rows: Vec<TaskRow> = match outcome.kind {
        OutcomeKind::Success => {
            cached::<ReleaseSuccess, _>(statement(RELEASE_SUCCESS))
                .load(conn)
                .await?
        }
        OutcomeKind::Failure => {
            cached::<ReleaseFailure, _>(statement(RELEASE_FAILURE))
                .load(conn)
                .await?
        }
    };
    let row = rows.into_iter().next();
    match row {
        Some(row) => row.into_task(),
        None => Err(refusal(conn, now, ns, id, outcome.worker.as_ref()).await),
    }
}

/// Why a release or heartbeat changed nothing: unknown task, not retained, or retained by
/// someone else (the same checks, in the same order, as the domain's `check_holder`).
async fn refusal(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    worker: Option<&WorkerName>,
) -> PgError {
    let task = match get(conn, now, ns, id).await {
        Ok(task) => task,
        Err(e) => return e,
    };
    if task.state != State::Retained {
        return StoreError::Rule(pgqueue_domain::Error::NotRetained).into();
    }
    match worker {
        Some(w) if task.worker.as_deref() != Some(w.as_str()) => {
            StoreError::Rule(pgqueue_domain::Error::NotRetainedBy(w.as_str().to_string())).into()
        }
        // The row changed between the update and this read (released and retained again by
        // the same worker): report the refusal the update saw.
        _ => StoreError::Rule(pgqueue_domain::Error::NotRetained).into(),
    }
}

/// Many releases in one statement: each `(id, kind, result, worker)` row is applied with the
/// rules of [`release`]; the rows that matched come back, the others are explained one by one.
const RELEASE_MANY: &str = concat!(
    with_now!(),
    ", r AS (SELECT * FROM unnest($3::bigint[], $4::bool[], $5::jsonb[], $6::text[]) \
                AS r(id, fail, result, worker)) \
     UPDATE tasks t SET ",
    release_set_sql!("r.fail", "r.result"),
    " FROM r, queues q, c \
     WHERE t.id = r.id AND t.namespace = $2 AND t.state = 'retained' \
       AND (r.worker IS NULL OR t.worker = r.worker) \
       AND q.namespace = t.namespace AND q.name = t.queue \
     RETURNING t.*, c.now AS now"
);

/// Releases several tasks in one round trip (plus one read per refused release). When a task
/// is named more than once, the releases depend on each other, so they are applied one by
/// one in the given order instead, as the port's default does.
pub(crate) async fn release_many(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    releases: &[(TaskId, Outcome)],
) -> Result<Vec<Result<Task, PgError>>, PgError> {
    let mut seen = std::collections::HashSet::new();
    if !releases.iter().all(|(id, _)| seen.insert(*id)) {
        let mut out = Vec::with_capacity(releases.len());
        for (id, outcome) in releases {
            match release(conn, now, ns, *id, outcome).await {
                Err(PgError::Store(e)) => out.push(Err(PgError::Store(e))),
                Err(e) => return Err(e),
                Ok(task) => out.push(Ok(task)),
            }
        }
        return Ok(out);
    }
    let unique: Vec<&(TaskId, Outcome)> = releases.iter().collect();
    let ids: Vec<i64> = unique.iter().map(|(id, _)| *id).collect();
    let fails: Vec<bool> = unique
        .iter()
        .map(|(_, o)| o.kind == OutcomeKind::Failure)
        .collect();
    let results: Vec<Option<Value>> = unique.iter().map(|(_, o)| o.result.clone()).collect();
    let workers: Vec<Option<&str>> = unique
        .iter()
        .map(|(_, o)| o.worker.as_ref().map(|w| w.as_str()))
        .collect();
    /// Prepared once per connection: a server coalescing single releases sends this for
    /// batches of one or two, where parsing and planning would cost more than the update.
    struct ReleaseMany;
    let rows: Vec<TaskRow> = cached::<ReleaseMany, _>(
        diesel::sql_query(RELEASE_MANY)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Bool>, _>(fails)
            .bind::<Array<Nullable<Jsonb>>, _>(results)
            .bind::<Array<Nullable<Text>>, _>(workers),
    )
    .load(conn)
    .await?;
    let mut released: std::collections::HashMap<TaskId, Task> = rows
        .into_iter()
        .map(|r| r.into_task().map(|t| (t.id, t)))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(releases.len());
    for (id, outcome) in releases {
        match released.remove(id) {
            Some(task) => out.push(Ok(task)),
            None => out.push(Err(
                refusal(conn, now, ns, *id, outcome.worker.as_ref()).await
            )),
        }
    }
    Ok(out)
}

const HEARTBEAT: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET lease_expires_at = c.now + (q.lease / 1000) * interval '1 microsecond' \
     FROM queues q, c WHERE t.id = $2 AND t.namespace = $3 AND t.state = 'retained' \
       AND t.worker = $4 AND q.namespace = t.namespace AND q.name = t.queue \
     RETURNING t.*, c.now AS now"
);

/// Extends `worker`'s lease (domain rule `Task::heartbeat`).
pub(crate) async fn heartbeat(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    id: TaskId,
    worker: &WorkerName,
) -> Result<Task, PgError> {
    struct Heartbeat;
    let row: Option<TaskRow> = cached::<Heartbeat, _>(
        diesel::sql_query(HEARTBEAT)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(worker.as_str()),
    )
    .load(conn)
    .await?
    .pop();
    match row {
        Some(row) => row.into_task(),
        None => Err(refusal(conn, now, ns, id, Some(worker)).await),
    }
}

/// Lease rescue (domain rule `Task::rescue`): retained rows whose lease passed and that have
/// not expired, in every namespace, claimed with `SKIP LOCKED`.
const RESCUE: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET ",
    fail_attempt_sql!("'{\"error\":\"lease expired\"}'::jsonb"),
    " FROM queues q, c \
     WHERE q.namespace = t.namespace AND q.name = t.queue AND t.id IN ( \
       SELECT r.id FROM tasks r, c \
       WHERE r.state = 'retained' AND r.lease_expires_at <= c.now AND r.dies_at > c.now \
       ORDER BY r.lease_expires_at, r.id LIMIT $2 \
       FOR UPDATE OF r SKIP LOCKED) \
     RETURNING t.*, c.now AS now"
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
        .filter(|t| t.state == State::Retry)
        .map(|t| format!("task:{}:{}", t.namespace, t.queue))
        .collect();
    woken.sort();
    woken.dedup();
    if !woken.is_empty() {
        let notified =
            diesel::sql_query("SELECT pg_notify('pgqueue', p) FROM unnest($1::text[]) AS p")
                .bind::<Array<Text>, _>(woken)
                .execute(conn)
                .await;
        if let Err(e) = notified {
            // A lost wake-up only delays the next retain until a poll; the rescue stands.
            tracing::warn!(error = %e, "cannot notify rescued tasks");
        }
    }
    Ok(tasks)
}

/// Clean-up (domain rule `Task::is_cleanable`): tasks that ended — finished at
/// `finished_at`, or expired at `dies_at` — at least their queue's `ttl` ago, oldest id first
/// (the oldest tasks are the likeliest to have ended, and every adapter deletes the same ones).
const CLEAN_UP: &str = concat!(
    with_now!(),
    "DELETE FROM tasks WHERE id IN ( \
       SELECT t.id FROM tasks t JOIN queues q ON q.namespace = t.namespace AND q.name = t.queue \
       CROSS JOIN c \
       WHERE (t.state IN ('released', 'failed') \
              AND t.finished_at + (q.ttl / 1000) * interval '1 microsecond' <= c.now) \
          OR (t.state IN ('new', 'retry', 'retained') \
              AND t.dies_at + (q.ttl / 1000) * interval '1 microsecond' <= c.now) \
       ORDER BY t.id LIMIT $2 FOR UPDATE OF t SKIP LOCKED)"
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
        .execute(conn)
        .await?;
    Ok(n as u64)
}

const CLEAN_QUEUE: &str = concat!(
    with_now!(),
    "DELETE FROM tasks t USING c WHERE t.namespace = $2 AND t.queue = $3 \
       AND (t.state IN ('released', 'failed') OR t.dies_at <= c.now) \
     RETURNING t.*, c.now AS now"
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
