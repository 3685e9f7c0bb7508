//! Creating tasks with unique keys: the key locks of a batch, freeing the keys of expired
//! holders, reading the holders of keys already taken, and the create loops that answer each
//! task with the task that holds its key (see `create.rs` for why keys are enforced this way).

use super::TaskRow;
use super::create::{CreatedRow, Shape, insert};
use crate::cached::cached;
use crate::error::PgError;
use crate::sql::{Now, open_states, with_now};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};
use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use pgqueue_domain::{Created, Namespace, NewTask, QueueName, Task, UniqueKey};
use pgqueue_ports::StoreError;
use std::collections::{HashMap, VecDeque};

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

pub(super) use free_expired_keys_sql;

const FREE_EXPIRED_KEYS: &str = concat!(with_now!(), free_expired_keys_sql!("$4", "$5"));

/// The tasks that hold the given keys now.
const HOLDERS: &str = concat!(
    with_now!(),
    "SELECT t.*, c.now AS now FROM tasks t CROSS JOIN c \
     WHERE t.namespace = $2 AND t.queue = $3 AND t.unique_key = ANY($4) \
       AND t.state IN ",
    open_states!(),
);

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
pub(super) async fn create_one_keyed(
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
pub(super) async fn create_keyed(
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
