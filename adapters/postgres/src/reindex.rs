//! Rebuilding the task table's indexes when they are mostly empty pages.
//!
//! A queue's indexes are written at one end and emptied at the other: the claim indexes take
//! each new task at the right (newest `created_at`) and lose it when it is claimed, and the
//! others lose every ended task at clean-up. After a burst (a million-task backlog drained,
//! or tasks claimed faster than vacuum ran), a vacuum frees the emptied pages but never
//! gives them back: the index file keeps its peak size. Scans do not read the freed pages,
//! but the planner prices an index by its size per entry, so a claim index of 6,700 pages
//! holding 20,000 entries looks like a 6,700-page walk, and the generic claim plan (which
//! assumes `LIMIT $n` takes a tenth of the rows) switches to reading the whole table and
//! sorting it, for every claim (measured after a 30-minute churn: the drain at 0.2× of a
//! fresh database). Vacuum cannot fix that and autovacuum never reindexes, so the
//! maintenance pass rebuilds such an index with `REINDEX INDEX CONCURRENTLY`, which blocks
//! neither reads nor writes (Oban's `Reindexer` plugin answers the same problem daily; this
//! one answers only when an index is measurably bloated).
//!
//! A rebuild that is interrupted (the server stopped during a pass) leaves an invalid copy
//! of the index behind, which PostgreSQL may go on writing with every change of a task; the
//! next pass drops it before it looks for bloat.

use crate::error::PgError;
use crate::maintenance::qualified;
use crate::store::in_schema;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::sync::atomic::{AtomicBool, Ordering};

/// Indexes smaller than this many pages (8 MB) are never rebuilt: reading them is cheap
/// whatever their density, and rebuilding would be busywork.
const MIN_PAGES: i64 = 1024;

/// A healthy B-tree page of these indexes holds 50–200 entries; fewer than this many per
/// page on average means most of the index is empty pages.
const MIN_ENTRIES_PER_PAGE: i64 = 8;

/// An index of the task table with its size and its entry count as the last vacuum or
/// analyse counted it (`pg_class.reltuples`; −1: never counted).
#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub(crate) struct IndexSize {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) pages: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) entries: i64,
    /// Whether this session may rebuild it (only the owner may; a least-privilege runtime
    /// role is not).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub(crate) owned: bool,
}

/// Whether an index of `pages` holding `entries` is worth rebuilding: large, and mostly
/// empty. An uncounted index (`entries` < 0) is left alone until a vacuum has counted it.
pub(crate) fn bloated(pages: i64, entries: i64) -> bool {
    entries >= 0 && pages >= MIN_PAGES && entries < pages.saturating_mul(MIN_ENTRIES_PER_PAGE)
}

/// No index of the task table is being built or rebuilt in this database right now
/// (`pg_stat_progress_create_index`; a build whose table this role may not see counts as
/// one). Then an invalid copy is a leftover, and a rebuild would not repeat one that
/// another process is running (that one would wait for it, then rebuild the fresh index
/// again).
macro_rules! no_build {
    () => {
        "NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
           WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND (p.relid IS NULL OR p.relid = 'tasks'::regclass))"
    };
}

/// The task table's valid indexes (an invalid one, left by an interrupted concurrent
/// rebuild, is not used by any plan and is not ours to judge), none while `no_build!` does
/// not hold.
const SIZES: &str = concat!(
    "SELECT c.relname::text AS name, \
       (pg_relation_size(c.oid) / current_setting('block_size')::bigint) AS pages, \
       c.reltuples::bigint AS entries, pg_has_role(c.relowner, 'USAGE') AS owned \
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
     WHERE i.indrelid = 'tasks'::regclass AND i.indisvalid AND ",
    no_build!(),
    " ORDER BY c.relname"
);

/// The task table's leftovers of an interrupted `REINDEX … CONCURRENTLY` (a server stopped
/// during a pass, a statement timeout): the half-built copy `<index>_ccnew[N]`, or the
/// original `<index>_ccold[N]` when it stopped after the swap. Both are invalid, so no plan
/// reads them, but one interrupted after its build is still written by every insert and
/// update, for good. Listed only while `no_build!` holds, because a rebuild in progress
/// has an invalid copy of the same name; an invalid index of any other name (an interrupted
/// `CREATE INDEX CONCURRENTLY`) is not ours.
const LEFTOVERS: &str = concat!(
    "SELECT c.relname::text AS name \
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
     WHERE i.indrelid = 'tasks'::regclass AND NOT i.indisvalid \
       AND c.relname ~ '_cc(new|old)[0-9]*$' AND pg_has_role(c.relowner, 'USAGE') AND ",
    no_build!(),
    " ORDER BY c.relname"
);

/// The name of a leftover of [`LEFTOVERS`].
#[derive(QueryableByName, Debug)]
struct Leftover {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The task table's [`LEFTOVERS`] and its valid indexes' [`SIZES`], read in one transaction
/// after `set_path` (the unprepared pool's schema, which must not outlive the transaction on
/// a pooler's connection). Dropping a leftover changes neither list's other rows: leftovers
/// are invalid, and only valid indexes are sized.
async fn catalog(
    conn: &mut AsyncPgConnection,
    set_path: Option<&str>,
) -> Result<(Vec<Leftover>, Vec<IndexSize>), PgError> {
    in_schema(conn, set_path, async |c| {
        let leftovers = diesel::sql_query(LEFTOVERS).load(c).await?;
        let sizes = diesel::sql_query(SIZES).load(c).await?;
        Ok((leftovers, sizes))
    })
    .await
}

/// Drops `leftovers` (see [`LEFTOVERS`]) with `DROP INDEX CONCURRENTLY`, which blocks neither
/// reads nor writes.
async fn drop_leftovers(
    conn: &mut AsyncPgConnection,
    schema: Option<&str>,
    leftovers: &[Leftover],
) -> Result<(), PgError> {
    for index in leftovers {
        tracing::warn!(
            index = %index.name,
            "dropping an invalid index of tasks that an interrupted rebuild left behind"
        );
        let name = qualified(schema, &index.name);
        conn.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            .await?;
    }
    Ok(())
}

/// Drops what an interrupted rebuild left behind, then rebuilds the bloated indexes of the
/// task table, one at a time; answers how many it rebuilt. The catalog is read in one
/// transaction ([`catalog`]); each `DROP`/`REINDEX … CONCURRENTLY` runs outside any, naming
/// the index in `schema`. A bloated index this role does not own is reported once (`warned`)
/// and left alone.
pub(crate) async fn reindex_bloated(
    conn: &mut AsyncPgConnection,
    schema: Option<&str>,
    set_path: Option<&str>,
    warned: &AtomicBool,
) -> Result<u32, PgError> {
    let (leftovers, sizes) = catalog(conn, set_path).await?;
    // First, so that no rebuild runs beside a leftover that every write still pays for.
    drop_leftovers(conn, schema, &leftovers).await?;
    let mut rebuilt = 0;
    for index in sizes.iter().filter(|i| bloated(i.pages, i.entries)) {
        if !index.owned {
            if !warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    index = %index.name,
                    pages = index.pages,
                    entries = index.entries,
                    "an index of tasks is mostly empty pages, but only its owner may rebuild \
                     it: run `REINDEX INDEX CONCURRENTLY` as the migrating role"
                );
            }
            continue;
        }
        let name = qualified(schema, &index.name);
        tracing::info!(
            index = %index.name,
            pages = index.pages,
            entries = index.entries,
            "rebuilding a mostly empty index of tasks"
        );
        conn.batch_execute(&format!("REINDEX INDEX CONCURRENTLY {name}"))
            .await?;
        rebuilt += 1;
    }
    Ok(rebuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_mostly_empty_indexes_are_rebuilt() {
        // The churned claim index: 6,729 pages for 20,000 entries.
        assert!(bloated(6_729, 20_000));
        // The same entries in a compact index, or a large index that is full.
        assert!(!bloated(150, 20_000));
        assert!(!bloated(6_729, 1_000_000));
        // Small indexes are never worth it, even empty ones.
        assert!(!bloated(MIN_PAGES - 1, 0));
        assert!(bloated(MIN_PAGES, 0));
        // Never counted: wait for a vacuum.
        assert!(!bloated(10_000, -1));
        // The boundary: 8 entries per page is still healthy enough.
        assert!(!bloated(2_000, 16_000));
        assert!(bloated(2_000, 15_999));
    }
}
