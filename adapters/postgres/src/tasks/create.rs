//! Creating tasks (domain: `Task::create`): one `INSERT … SELECT … FROM unnest(…)` whatever
//! the batch size; with unique keys, a few statements in one transaction.
//!
//! Unique keys are enforced by the database: the partial unique index `tasks_unique_key`
//! over the states that hold a key, and `INSERT … ON CONFLICT DO NOTHING`. Creators of one key
//! also take a transaction-level advisory lock on it (all keys of a batch in sorted order,
//! so two batches never deadlock): of N concurrent creates of a key, the first inserts and
//! the others wait for its transaction, then see its task, or, if it rolled back, insert
//! theirs. No caller is ever answered with a task that did not commit, and a task without a
//! key pays none of this.

use super::TaskRow;
use crate::cached::cached;
use crate::error::PgError;
use crate::schema::tasks;
use crate::sql::{Now, open_states, plus, with_now};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Created, Namespace, NewTask, QueueName, Task, UniqueKey};
use pgqueue_ports::StoreError;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// The insert of `$4…$7` (payloads, delays, priorities, keys) into queue `$3` of `$2`, reading
/// the queue's policy in the same statement, in input order (ids follow it). `$filter`
/// narrows the rows, `$conflict` handles a key taken meanwhile, `$tail` may notify. The
/// queue's row is locked `FOR KEY SHARE` (what a foreign key's check would take, once per
/// statement): a concurrent delete or rename of the queue waits for this insert to commit and
/// then carries its tasks, or goes first and this insert finds no queue.
macro_rules! create_sql {
    ([$($filter:tt)*], [$($conflict:tt)*], [$($tail:tt)*]) => {
        concat!(
            with_now!(),
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
            " RETURNING id, created_at, delayed_at, finished_at, dies_at, retries, max_retries, \
                         state, priority, unique_key) \
             SELECT ins.*, c.now AS now FROM ins CROSS JOIN c",
            $($tail)*
        )
    };
}

/// Wakes the queue's workers from the statement itself when it inserted something.
macro_rules! notify_tail {
    () => {
        " CROSS JOIN (SELECT pg_notify('pgqueue', 'task:' || $2 || ':' || $3) \
                      FROM (SELECT 1 FROM ins LIMIT 1) AS one) AS notified"
    };
}

/// Rows whose key is held by a waiting or retained task (seen by this statement) are not
/// inserted; a key taken after that is skipped by `ON CONFLICT`.
macro_rules! keyed {
    ($($tail:tt)*) => {
        create_sql!(
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
}

const CREATE: &str = create_sql!([""], [""], [notify_tail!()]);
/// The insert without a wake-up (the caller sends one later; see `debounce.rs`).
const CREATE_QUIET: &str = create_sql!([""], [""], [""]);
const CREATE_KEYED: &str = keyed!(notify_tail!());
const CREATE_KEYED_QUIET: &str = keyed!("");

/// Serialises the creators of each key: sorted, so two batches never wait for each other in
/// a cycle. Held until the transaction ends.
const LOCK_KEYS: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || k, 0)) \
     FROM (SELECT DISTINCT k FROM unnest($3::text[]) AS k ORDER BY k) AS keys";

/// An expired task gives its key up to a new task (domain: `Task::gives_up_key`): the index
/// knows stored states, not derived expiry.
const FREE_EXPIRED_KEYS: &str = concat!(
    with_now!(),
    "UPDATE tasks t SET unique_key = NULL FROM c \
     WHERE t.namespace = $2 AND t.queue = $3 AND t.unique_key = ANY($4) \
       AND t.state IN ",
    open_states!(),
    " AND t.dies_at <= c.now AND NOT t.id = ANY($5)"
);

/// The tasks that hold the given keys now.
const HOLDERS: &str = concat!(
    with_now!(),
    "SELECT t.*, c.now AS now FROM tasks t CROSS JOIN c \
     WHERE t.namespace = $2 AND t.queue = $3 AND t.unique_key = ANY($4) \
       AND t.state IN ",
    open_states!(),
);

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
    priority: i16,
    unique_key: Option<String>,
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
            priority: self.priority,
            unique_key: self.unique_key,
            cancel_requested_at: None,
            now: self.now,
        }
        .into_task()
    }
}

/// Runs one insert statement over `new` and returns its rows in id (so input) order.
async fn insert(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    new: &[&NewTask],
    notify: bool,
    keyed: bool,
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
    let mut rows: Vec<CreatedRow> = match (keyed, notify) {
        (false, true) => cached::<Create, _>(statement(CREATE)).load(conn).await?,
        (false, false) => {
            cached::<CreateQuiet, _>(statement(CREATE_QUIET))
                .load(conn)
                .await?
        }
        (true, true) => {
            cached::<CreateKeyed, _>(statement(CREATE_KEYED))
                .load(conn)
                .await?
        }
        (true, false) => {
            cached::<CreateKeyedQuiet, _>(statement(CREATE_KEYED_QUIET))
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
    if new.iter().any(|n| n.unique_key().is_some()) {
        return conn
            .transaction(async |conn| create_keyed(conn, now, ns, queue, new, notify).await)
            .await;
    }
    let all: Vec<&NewTask> = new.iter().collect();
    let rows = insert(conn, now, ns, queue, &all, notify, false).await?;
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

/// Takes `keys` from the expired tasks of the queue that hold them (domain:
/// `Task::give_up_key`), except from the tasks `keep`.
pub(crate) async fn free_expired_keys(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    keys: &[&str],
    keep: &[i64],
) -> Result<(), PgError> {
    diesel::sql_query(FREE_EXPIRED_KEYS)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(queue.as_str())
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<BigInt>, _>(keep)
        .execute(conn)
        .await?;
    Ok(())
}

/// Serialises this transaction with every other creator (and retrier) of `keys`.
pub(crate) async fn lock_keys(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    queue: &QueueName,
    keys: &[&str],
) -> Result<(), PgError> {
    diesel::sql_query(LOCK_KEYS)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(queue.as_str())
        .bind::<Array<Text>, _>(keys)
        .execute(conn)
        .await?;
    Ok(())
}

/// The tasks that hold `keys` now, by key.
async fn holders(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    keys: &[&str],
) -> Result<HashMap<String, Task>, PgError> {
    let rows: Vec<TaskRow> = diesel::sql_query(HOLDERS)
        .bind::<Nullable<Timestamptz>, _>(now)
        .bind::<Text, _>(ns.as_str())
        .bind::<Text, _>(queue.as_str())
        .bind::<Array<Text>, _>(keys)
        .load(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            let task = r.into_task()?;
            let key = task.unique_key().map(|k| k.as_str().to_string());
            Ok((key.unwrap_or_default(), task))
        })
        .collect()
}

/// A batch with unique keys, inside a transaction: lock the keys, free the keys of expired
/// holders, insert what no live task holds, and answer the rest with their holders. A holder
/// that ended between the insert and the read leaves its key free: those rows are inserted
/// again (a few rounds at most, each after a holder ended).
async fn create_keyed(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    new: &[NewTask],
    notify: bool,
) -> Result<Vec<Created>, PgError> {
    let all_keys: Vec<&str> = new
        .iter()
        .filter_map(|n| n.unique_key().map(UniqueKey::as_str))
        .collect();
    lock_keys(conn, ns, queue, &all_keys).await?;
    // In a queue that allows attempts, a new task holds its key, so the first task of the
    // batch with each key is the one that may be created and its repeats answer it. In a
    // queue without attempts every task fails at once and holds nothing: each is created
    // unless an older task still holds its key.
    let dedupe = crate::queues::get(conn, ns, queue).await?.retries > 0;
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, n) in new.iter().enumerate() {
        if let Some(k) = n.unique_key() {
            first.entry(k.as_str()).or_insert(i);
        }
    }
    let mut answers: Vec<Option<Created>> = vec![None; new.len()];
    let mut pending: Vec<usize> = (0..new.len())
        .filter(|i| !dedupe || new[*i].unique_key().is_none_or(|k| first[k.as_str()] == *i))
        .collect();
    for _round in 0..8 {
        if pending.is_empty() {
            break;
        }
        let keys: Vec<&str> = pending
            .iter()
            .filter_map(|i| new[*i].unique_key().map(UniqueKey::as_str))
            .collect();
        free_expired_keys(conn, now, ns, queue, &keys, &[]).await?;
        let batch: Vec<&NewTask> = pending.iter().map(|i| &new[*i]).collect();
        let rows = insert(conn, now, ns, queue, &batch, notify, true).await?;
        // Rows come in id order, which is input order: each key's rows, first to last.
        let mut inserted: HashMap<Option<String>, VecDeque<CreatedRow>> = HashMap::new();
        for row in rows {
            inserted
                .entry(row.unique_key.clone())
                .or_default()
                .push_back(row);
        }
        let mut keyless = inserted.remove(&None).unwrap_or_default().into_iter();
        let mut missing = Vec::new();
        for &i in &pending {
            let n = &new[i];
            let row = match n.unique_key() {
                None => keyless.next(),
                Some(k) => inserted
                    .get_mut(&Some(k.as_str().to_string()))
                    .and_then(VecDeque::pop_front),
            };
            match row {
                Some(row) => {
                    answers[i] = Some(Created::New(row.into_task(
                        ns,
                        queue,
                        n.payload().clone(),
                    )?))
                }
                None if n.unique_key().is_none() => {
                    // Keyless rows are always inserted when the queue exists.
                    crate::queues::get(conn, ns, queue).await?;
                    return Err(StoreError::Unavailable("a task was not created".into()).into());
                }
                None => missing.push(i),
            }
        }
        if missing.is_empty() {
            pending.clear();
            break;
        }
        crate::queues::get(conn, ns, queue).await?;
        let keys: Vec<&str> = missing
            .iter()
            .filter_map(|i| new[*i].unique_key().map(UniqueKey::as_str))
            .collect();
        let held = holders(conn, now, ns, queue, &keys).await?;
        pending = Vec::new();
        for i in missing {
            let key = new[i]
                .unique_key()
                .map(UniqueKey::as_str)
                .unwrap_or_default();
            match held.get(key) {
                Some(task) => answers[i] = Some(Created::Existing(task.clone())),
                None => pending.push(i),
            }
        }
    }
    if !pending.is_empty() {
        return Err(
            StoreError::Unavailable("unique keys kept changing hands; try again".into()).into(),
        );
    }
    // Repeats of a key in the batch answer the batch's task with it.
    for i in 0..new.len() {
        if answers[i].is_none()
            && let Some(k) = new[i].unique_key()
            && let Some(Some(first)) = answers.get(first[k.as_str()]).cloned()
        {
            answers[i] = Some(Created::Existing(first.into_task()));
        }
    }
    answers
        .into_iter()
        .map(|a| a.ok_or_else(|| StoreError::Unavailable("a task has no answer".into()).into()))
        .collect()
}
