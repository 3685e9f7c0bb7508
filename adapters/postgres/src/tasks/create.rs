//! Creating tasks (domain: `Task::create`): one `INSERT … SELECT … FROM unnest(…)` whatever
//! the batch size; with unique keys, a few statements in one transaction.
//!
//! Unique keys are enforced by the database: the partial unique index `tasks_unique_key`
//! over the states that hold a key, and `INSERT … ON CONFLICT DO NOTHING`: of N concurrent
//! creates of a key, the first inserts and the others wait for its transaction, then see its
//! task, or, if it rolled back, insert theirs. No caller is ever answered with a task that
//! did not commit. A single keyed create is one statement; a batch with keys also takes a
//! transaction-level advisory lock per key, all in sorted order, because two batches that
//! wait on each other's keys in input order could deadlock. A task without a key pays none
//! of this.

use super::TaskRow;
use super::keyed::{create_keyed, create_one_keyed, free_expired_keys_sql};
use crate::cached::cached;
use crate::error::PgError;
use crate::schema::tasks;
use crate::sql::{Now, open_states, plus, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Created, Namespace, NewTask, QueueName, Task, UniqueKey};
use pgqueue_ports::StoreError;
use serde_json::Value;

/// The insert of `$4…$7` (payloads, delays, priorities, keys) into queue `$3` of `$2`, reading
/// the queue's policy in the same statement, in input order (ids follow it). `$filter`
/// narrows the rows, `$conflict` handles a key taken meanwhile, `$tail` may notify. The
/// queue's row is locked `FOR KEY SHARE` (what a foreign key's check would take, once per
/// statement): a concurrent delete or rename of the queue waits for this insert to commit and
/// then carries its tasks, or goes first and this insert finds no queue.
macro_rules! create_sql {
    ([$($filter:tt)*], [$($conflict:tt)*], [$($tail:tt)*]) => {
        create_sql!([""], [$($filter)*], [$($conflict)*], [$($tail)*])
    };
    ([$($ctes:tt)*], [$($filter:tt)*], [$($conflict:tt)*], [$($tail:tt)*]) => {
        concat!(
            with_now!(),
            $($ctes)*,
            ", q AS (SELECT * FROM queues WHERE namespace = $2 AND name = $3 FOR KEY SHARE), \
             n AS (SELECT * FROM unnest($4::jsonb[], $5::timestamptz[], $6::smallint[], $7::text[]) \
                   WITH ORDINALITY AS n(payload, delayed_at, priority, unique_key, ord)), \
             ins AS ( \
               INSERT INTO tasks (namespace, queue, payload, created_at, delayed_at, dies_at, \
                                  retries, max_retries, state, finished_at, priority, unique_key) \
               SELECT q.namespace, q.name, n.payload, c.now, n.delayed_at, ",
            plus!("greatest(coalesce(n.delayed_at, c.now), c.now)", "q.ttl"),
            ", q.retries, q.retries, \
                      CASE WHEN q.retries = 0 THEN 'failed' ELSE 'new' END, \
                      CASE WHEN q.retries = 0 THEN c.now END, n.priority, n.unique_key \
               FROM n CROSS JOIN q CROSS JOIN c ",
            $($filter)*,
            " ORDER BY n.ord ",
            $($conflict)*,
            " RETURNING id, namespace, queue, created_at, delayed_at, finished_at, dies_at, \
                         retries, max_retries, state, priority, unique_key)",
            $crate::sql::record_events!("ins", "'created'"),
            " SELECT ins.*, c.now AS now FROM ins CROSS JOIN c",
            $($tail)*
        )
    };
}

/// Wakes the queue's workers from the statement itself when it inserted something; and
/// when the transaction has been open a while already (an `enqueue_in` at the end of a long
/// one: its tasks' keys are the transaction's start, and claims may pass them before it
/// commits, further back than the trailing walk reaches), tells every store to forget the
/// queue's floors once it commits (`floors.rs`).
macro_rules! notify_tail {
    () => {
        " CROSS JOIN (SELECT pg_notify('pgqueue', 'task:' || $2 || ':' || $3) \
                      FROM (SELECT 1 FROM ins LIMIT 1) AS one) AS notified \
          LEFT JOIN (SELECT pg_notify('pgqueue', 'floor:' || $2 || ':' || $3) \
                     FROM (SELECT 1 FROM ins LIMIT 1) AS one \
                     WHERE now() < clock_timestamp() - interval '1 second') AS floored ON true"
    };
}

/// Rows whose key is held by a waiting or retained task (seen by this statement) are not
/// inserted; a key taken after that is skipped by `ON CONFLICT`. `$ctes` may add a
/// data-modifying CTE.
macro_rules! keyed {
    ([$($ctes:tt)*], $($tail:tt)*) => {
        create_sql!(
            [$($ctes)*],
            [concat!(
                "WHERE NOT EXISTS (SELECT 1 FROM tasks h WHERE h.namespace = q.namespace \
                   AND h.queue = q.name AND h.unique_key = n.unique_key AND h.state IN ",
                open_states!(),
                ")"
            )],
            ["ON CONFLICT DO NOTHING"],
            [$($tail)*]
        )
    };
    ($($tail:tt)*) => {
        keyed!([""], $($tail)*)
    };
}

const CREATE: &str = create_sql!([""], [""], [notify_tail!()]);
/// The insert without a wake-up (the caller sends one later; see `debounce.rs`).
const CREATE_QUIET: &str = create_sql!([""], [""], [""]);
const CREATE_KEYED: &str = keyed!(notify_tail!());
const CREATE_KEYED_QUIET: &str = keyed!("");

/// One task with a key, as one statement (no transaction, no advisory lock: with one key
/// there is no lock order to keep, and `ON CONFLICT` waits for a concurrent creator of the
/// key and then skips). Its `freed` CTE takes the key from an expired holder; that holder
/// still blocks this statement's insert (one snapshot), so the caller runs it once more.
const CREATE_ONE_KEYED: &str = keyed!(
    [concat!(
        ", freed AS (",
        free_expired_keys_sql!("ARRAY[$7[1]]", "'{}'::bigint[]"),
        ")"
    )],
    notify_tail!()
);
const CREATE_ONE_KEYED_QUIET: &str = keyed!(
    [concat!(
        ", freed AS (",
        free_expired_keys_sql!("ARRAY[$7[1]]", "'{}'::bigint[]"),
        ")"
    )],
    ""
);

/// What the insert returns: only what the database decided. Payloads (and everything a new
/// task leaves empty) are not sent back: the caller has them, and parsing a batch's payloads
/// back out of the database cost more than the rest of the answer.
#[derive(QueryableByName, Debug)]
#[diesel(table_name = tasks)]
pub(super) struct CreatedRow {
    id: i64,
    created_at: DateTime<Utc>,
    delayed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    dies_at: DateTime<Utc>,
    retries: i32,
    max_retries: i32,
    state: String,
    priority: i16,
    pub(super) unique_key: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

impl CreatedRow {
    /// The created task: this row's columns, the rest as a new task has them.
    pub(super) fn into_task(
        self,
        ns: &Namespace,
        queue: &QueueName,
        payload: Value,
    ) -> Result<Task, PgError> {
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
            priority: self.priority,
            unique_key: self.unique_key,
            cancel_requested_at: None,
            now: self.now,
        }
        .into_task()
    }
}

/// Which insert statement to run.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    /// No task has a key.
    Plain,
    /// Some have keys; the caller holds their locks and freed expired holders' keys.
    Keyed,
    /// One task with a key, on its own (see `CREATE_ONE_KEYED`).
    OneKeyed,
}

/// Runs one insert statement over `new` and returns its rows in id (so input) order.
pub(super) async fn insert(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    new: &[&NewTask],
    notify: bool,
    shape: Shape,
) -> Result<Vec<CreatedRow>, PgError> {
    let payloads: Vec<&Value> = new.iter().map(|n| n.payload()).collect();
    let delays: Vec<Option<DateTime<Utc>>> = new.iter().map(|n| n.delayed_at()).collect();
    let priorities: Vec<i16> = new.iter().map(|n| n.priority()).collect();
    let keys: Vec<Option<&str>> = new
        .iter()
        .map(|n| n.unique_key().map(UniqueKey::as_str))
        .collect();
    let statement = |sql| {
        diesel::sql_query(sql)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Jsonb>, _>(payloads)
            .bind::<Array<Nullable<Timestamptz>>, _>(delays)
            .bind::<Array<Int2>, _>(priorities)
            .bind::<Array<Nullable<Text>>, _>(keys)
    };
    // Each its own prepared statement per connection: single creates are the enqueue hot path.
    struct Create;
    struct CreateQuiet;
    struct CreateKeyed;
    struct CreateKeyedQuiet;
    struct CreateOneKeyed;
    struct CreateOneKeyedQuiet;
    let mut rows: Vec<CreatedRow> = match (shape, notify) {
        (Shape::Plain, true) => cached::<Create, _>(statement(CREATE)).load(conn).await?,
        (Shape::Plain, false) => {
            cached::<CreateQuiet, _>(statement(CREATE_QUIET))
                .load(conn)
                .await?
        }
        (Shape::Keyed, true) => {
            cached::<CreateKeyed, _>(statement(CREATE_KEYED))
                .load(conn)
                .await?
        }
        (Shape::Keyed, false) => {
            cached::<CreateKeyedQuiet, _>(statement(CREATE_KEYED_QUIET))
                .load(conn)
                .await?
        }
        (Shape::OneKeyed, true) => {
            cached::<CreateOneKeyed, _>(statement(CREATE_ONE_KEYED))
                .load(conn)
                .await?
        }
        (Shape::OneKeyed, false) => {
            cached::<CreateOneKeyedQuiet, _>(statement(CREATE_ONE_KEYED_QUIET))
                .load(conn)
                .await?
        }
    };
    rows.sort_by_key(|r| r.id);
    Ok(rows)
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
) -> Result<Vec<Created>, PgError> {
    if new.is_empty() {
        crate::queues::get(conn, ns, queue).await?;
        return Ok(Vec::new());
    }
    if let [one] = new
        && let Some(key) = one.unique_key()
    {
        return create_one_keyed(conn, now, ns, queue, one, key, notify).await;
    }
    if new.iter().any(|n| n.unique_key().is_some()) {
        return conn
            .transaction(async |conn| create_keyed(conn, now, ns, queue, new, notify).await)
            .await;
    }
    let all: Vec<&NewTask> = new.iter().collect();
    let rows = insert(conn, now, ns, queue, &all, notify, Shape::Plain).await?;
    if rows.is_empty() {
        return Err(StoreError::not_found("queue", queue).into());
    }
    if rows.len() != new.len() {
        return Err(StoreError::Unavailable(
            format!("created {} tasks of {}", rows.len(), new.len()).into(),
        )
        .into());
    }
    rows.into_iter()
        .zip(new)
        .map(|(row, n)| {
            row.into_task(ns, queue, n.payload().clone())
                .map(Created::New)
        })
        .collect()
}
