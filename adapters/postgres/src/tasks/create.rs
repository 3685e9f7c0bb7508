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

/// Serialises the creators of each key: sorted, so two batches never wait for each other in
/// a cycle. Held until the transaction ends. Answers the queue's `retries` (no row: no such
/// queue) in the same round trip; the aggregate takes every lock before the row is formed,
/// and the queue's row is locked as an insert locks it (a delete of the queue waits).
const LOCK_KEYS: &str = "SELECT q.retries FROM queues q, \
       (SELECT count(pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || k, 0))) \
        FROM (SELECT DISTINCT k FROM unnest($3::text[]) AS k ORDER BY k) AS keys) AS locked \
     WHERE q.namespace = $1 AND q.name = $2 FOR KEY SHARE OF q";

/// Expired tasks of queue `$3` of `$2` holding one of `$keys` give them up, except the tasks
/// `$keep` (domain: `Task::gives_up_key`): the index knows stored states, not derived expiry.
macro_rules! free_expired_keys_sql {
    ($keys:literal, $keep:literal) => {
        concat!(
            "UPDATE tasks t SET unique_key = NULL FROM c \
             WHERE t.namespace = $2 AND t.queue = $3 AND t.unique_key = ANY(",
            $keys,
            ") AND t.state IN ",
            open_states!(),
            " AND t.dies_at <= c.now AND NOT t.id = ANY(",
            $keep,
            ")"
        )
    };
}

const FREE_EXPIRED_KEYS: &str = concat!(with_now!(), free_expired_keys_sql!("$4", "$5"));

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

/// Which insert statement to run.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// No task has a key.
    Plain,
    /// Some have keys; the caller holds their locks and freed expired holders' keys.
    Keyed,
    /// One task with a key, on its own (see `CREATE_ONE_KEYED`).
    OneKeyed,
}

/// Runs one insert statement over `new` and returns its rows in id (so input) order.
async fn insert(
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
    struct FreeExpiredKeys;
    cached::<FreeExpiredKeys, _>(
        diesel::sql_query(FREE_EXPIRED_KEYS)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Text>, _>(keys)
            .bind::<Array<BigInt>, _>(keep),
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Retries {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    retries: i32,
}

/// Serialises this transaction with every other creator (and retrier) of `keys`, and
/// answers the queue's `retries`; NotFound when the queue does not exist.
pub(crate) async fn lock_keys(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    queue: &QueueName,
    keys: &[&str],
) -> Result<i32, PgError> {
    struct LockKeys;
    let rows: Vec<Retries> = cached::<LockKeys, _>(
        diesel::sql_query(LOCK_KEYS)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Text>, _>(keys),
    )
    .load(conn)
    .await?;
    rows.into_iter()
        .next()
        .map(|r| r.retries)
        .ok_or_else(|| StoreError::not_found("queue", queue).into())
}

/// The tasks that hold `keys` now, by key.
async fn holders(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    keys: &[&str],
) -> Result<HashMap<String, Task>, PgError> {
    struct Holders;
    let rows: Vec<TaskRow> = cached::<Holders, _>(
        diesel::sql_query(HOLDERS)
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Text, _>(ns.as_str())
            .bind::<Text, _>(queue.as_str())
            .bind::<Array<Text>, _>(keys),
    )
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

/// One task with a key, without a transaction of its own: the insert, and when it created
/// nothing, the holder of the key. A round whose insert was blocked by an expired holder
/// freed the key; the next one creates.
async fn create_one_keyed(
    conn: &mut AsyncPgConnection,
    now: Now,
    ns: &Namespace,
    queue: &QueueName,
    new: &NewTask,
    key: &UniqueKey,
    notify: bool,
) -> Result<Vec<Created>, PgError> {
    for _round in 0..8 {
        let row = insert(conn, now, ns, queue, &[new], notify, Shape::OneKeyed)
            .await?
            .pop();
        if let Some(row) = row {
            return Ok(vec![Created::New(row.into_task(
                ns,
                queue,
                new.payload().clone(),
            )?)]);
        }
        let mut held = holders(conn, now, ns, queue, &[key.as_str()]).await?;
        if let Some(task) = held.remove(key.as_str()) {
            return Ok(vec![Created::Existing(task)]);
        }
        // No row and no holder: the queue is gone, or the key was freed (or its holder
        // ended) since the insert looked.
        crate::queues::get(conn, ns, queue).await?;
    }
    Err(StoreError::Unavailable("unique keys kept changing hands; try again".into()).into())
}

/// A batch with unique keys, inside a transaction: lock the keys, free the keys of expired
/// holders, insert what no live task holds, and answer the rest with their holders. (Freeing
/// comes first so that one insert creates every new row and ids follow the input order.) A
/// holder that ended between the insert and the read leaves its key free: those rows are
/// inserted again (a few rounds at most, each after a holder ended).
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
    // In a queue that allows attempts, a new task holds its key, so the first task of the
    // batch with each key is the one that may be created and its repeats answer it. In a
    // queue without attempts every task fails at once and holds nothing: each is created
    // unless an older task still holds its key.
    let dedupe = lock_keys(conn, ns, queue, &all_keys).await? > 0;
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
        let rows = insert(conn, now, ns, queue, &batch, notify, Shape::Keyed).await?;
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
