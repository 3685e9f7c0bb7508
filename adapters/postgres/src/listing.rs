//! Reading a namespace's queues or tickers: one by name, or the total and one page ordered by
//! name.
//!
//! Both tables are keyed `(namespace, name)` and read the same way; names sort by byte order
//! (`COLLATE "C"`), like the memory adapter's ordered maps, whatever the database's locale.

use crate::error::PgError;
use crate::sql::clamp;
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgqueue_domain::{Namespace, Page};

/// A `count(*) AS count` row.
#[derive(QueryableByName)]
pub(crate) struct Count {
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

impl Count {
    /// The count as the ports report it.
    pub fn total(&self) -> u64 {
        u64::try_from(self.count).unwrap_or(0)
    }
}

/// The total number of rows of `table` in `ns`, and the page of them ordered by name.
pub(crate) async fn by_name<R>(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    ns: &Namespace,
    page: Page,
) -> Result<(u64, Vec<R>), PgError>
where
    R: QueryableByName<Pg> + Send + 'static,
{
    let count: Count = diesel::sql_query(format!(
        "SELECT count(*) AS count FROM {table} WHERE namespace = $1"
    ))
    .bind::<Text, _>(ns.as_str())
    .get_result(conn)
    .await?;
    if page.limit() == 0 {
        return Ok((count.total(), Vec::new()));
    }
    let rows: Vec<R> = diesel::sql_query(format!(
        "SELECT * FROM {table} WHERE namespace = $1 ORDER BY name COLLATE \"C\" OFFSET $2 LIMIT $3"
    ))
    .bind::<Text, _>(ns.as_str())
    .bind::<BigInt, _>(clamp(page.offset()))
    .bind::<BigInt, _>(clamp(page.limit()))
    .load(conn)
    .await?;
    Ok((count.total(), rows))
}

/// The row of `table` keyed `(ns, name)`, if there is one.
pub(crate) async fn by_key<R>(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    ns: &Namespace,
    name: &str,
) -> Result<Option<R>, PgError>
where
    R: QueryableByName<Pg> + Send + 'static,
{
    let rows: Vec<R> = diesel::sql_query(format!(
        "SELECT * FROM {table} WHERE namespace = $1 AND name = $2"
    ))
    .bind::<Text, _>(ns.as_str())
    .bind::<Text, _>(name)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}
