//! Helpers for tests and benchmarks that need rows no sequence of API calls makes quickly
//! (feature `test-support`). Never part of what an embedder uses.

use crate::error::PgError;
use crate::store::PgStore;
use diesel::sql_types::Array;
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

/// Inserts `rows` waiting (`new`) tasks into `queues` of `ns`, round robin, with priorities
/// -20, -10, 0, 10, 20 in turn: a deep backlog of mixed priorities in one statement. The
/// queues must exist.
pub async fn insert_waiting(
    store: &PgStore,
    ns: &Namespace,
    queues: &[QueueName],
    rows: u64,
) -> Result<u64, PgError> {
    let mut conn = store.connection().await?;
    let names: Vec<&str> = queues.iter().map(QueueName::as_str).collect();
    let n = diesel::sql_query(
        "INSERT INTO tasks (namespace, queue, payload, created_at, dies_at, retries, max_retries, \
           state, priority) \
         SELECT $1, ($2::text[])[1 + g % cardinality($2::text[])], '{\"k\":1}', \
           now() - (g * interval '1 microsecond'), now() + interval '1 day', 3, 3, 'new', \
           ((g % 5) * 10 - 20)::smallint \
         FROM generate_series(1, $3) AS g",
    )
    .bind::<Text, _>(ns.as_str())
    .bind::<Array<Text>, _>(names)
    .bind::<BigInt, _>(i64::try_from(rows).unwrap_or(i64::MAX))
    .execute(&mut conn)
    .await?;
    Ok(n as u64)
}

/// The value of setting `name` in the sessions of the store's pool (as its hot-path
/// statements run), for tests of how pooled connections are set up.
pub async fn pooled_setting(store: &PgStore, name: &str) -> Result<String, PgError> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let mut conn = store.connection().await?;
    let row: Setting = diesel::sql_query("SELECT current_setting($1) AS value")
        .bind::<Text, _>(name)
        .get_result(&mut conn)
        .await?;
    Ok(row.value)
}

/// The claim statement's three variants (`any`, `one`, `several` queues), for plan tests.
/// Parameters: `$1` now (NULL: the database's), `$2` namespace, `$3` worker names,
/// `$4` queue names, `$5` how many.
pub fn claim_statements() -> [(&'static str, &'static str); 3] {
    crate::tasks::claim_statements()
}

/// The batched release statement, for plan tests. Parameters: `$1` now (NULL: the
/// database's), `$2` namespace, `$3` task ids, `$4` whether each failed, `$5` results,
/// `$6` worker names (NULL: anyone).
pub fn release_statement() -> &'static str {
    crate::tasks::release_statement()
}
