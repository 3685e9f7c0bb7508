//! Helpers for tests and benchmarks that need rows no sequence of API calls makes quickly
//! (feature `test-support`). Never part of what an embedder uses.

use crate::error::PgError;
use crate::store::PgStore;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use pgqueue_domain::{Namespace, QueueName};

/// Inserts `rows` tasks into `queue` of `ns`, released an hour ago and kept for a day, in one
/// statement: a history of finished tasks as a busy queue accumulates it. The queue must
/// exist (its policy is not read: these rows were never created through it).
pub async fn insert_released(
    store: &PgStore,
    ns: &Namespace,
    queue: &QueueName,
    rows: u64,
) -> Result<u64, PgError> {
    let mut conn = store.connection().await?;
    let n = diesel::sql_query(
        "INSERT INTO tasks (namespace, queue, payload, result, worker, created_at, started_at, \
           finished_at, dies_at, retries, max_retries, state) \
         SELECT $1, $2, '{\"k\":1}', 'null', 'bench@finished', \
           now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', \
           now() + interval '1 day', 3, 3, 'released' \
         FROM generate_series(1, $3)",
    )
    .bind::<Text, _>(ns.as_str())
    .bind::<Text, _>(queue.as_str())
    .bind::<BigInt, _>(i64::try_from(rows).unwrap_or(i64::MAX))
    .execute(&mut conn)
    .await?;
    Ok(n as u64)
}
