//! Housekeeping of the task table (and the event log, which churns as much) when the
//! database will not do it.
//!
//! Tasks churn: every task is inserted, updated two or three times and deleted, and none of
//! those updates is HOT (the claim indexes are partial on `state`). Without `ANALYZE` the
//! planner keeps believing the table looks as it did at the last one (say, empty, or all
//! finished) and picks plans that read every waiting task per claim; without `VACUUM` every
//! index fills with dead entries that each scan steps over. Autovacuum does both, with the
//! eager per-table settings of the migration. But it can be off (`autovacuum = off` in
//! `postgresql.conf`, or the table's `autovacuum_enabled`), and then the queue must do it
//! itself: [`maintain`] reads the table's counters and runs `VACUUM`/`ANALYZE` with the same
//! thresholds autovacuum would use, with `SKIP_LOCKED` so that several processes never queue
//! up behind each other's pass.
//!
//! A vacuum removes only rows that died before the oldest transaction still running began
//! (the cleanup *horizon*). While one transaction holds the horizon back (a session left
//! `idle in transaction`, a long report), dead rows stay above the threshold because none can
//! be removed, and a pass every 10 s would scan the whole, growing heap again and again for
//! nothing. So a pass remembers the horizon it vacuumed at ([`Horizon`]) and skips the vacuum
//! while the horizon has not moved since, logging once which session holds it.
//!
//! Each pass also rebuilds the indexes a burst left mostly empty (`reindex.rs`), which
//! vacuum cannot shrink and which turn the claim's plan into a scan of the whole table, and
//! drops what an interrupted rebuild left behind.

use crate::error::PgError;
use crate::store::in_schema;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use pgqueue_ports::Maintenance;
use std::sync::Mutex;

/// Dead rows tolerated before a vacuum, plus 1% of the live rows (the migration's
/// `autovacuum_vacuum_threshold` and `_scale_factor`).
const VACUUM_BASE: i64 = 1000;
/// Changed rows tolerated before an analyse, plus 2% of the live rows (as the migration's
/// `autovacuum_analyze_scale_factor`).
const ANALYZE_BASE: i64 = 1000;

/// The task table's counters, as `pg_stat_user_tables` has them.
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableStats {
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    dead: i64,
    #[diesel(sql_type = BigInt)]
    modified: i64,
    /// Whether autovacuum will look after the table.
    #[diesel(sql_type = Bool)]
    autovacuum: bool,
}

/// What is due for a table in this state: everything when forced; nothing while autovacuum
/// looks after it; otherwise what autovacuum would have done by now, except a vacuum that
/// could remove nothing: the cleanup horizon is where it was at the last vacuum
/// (`horizon_held`), so every row that died since is still visible to someone.
pub(crate) fn due(stats: TableStats, force: bool, horizon_held: bool) -> Maintenance {
    let on_our_own = !stats.autovacuum;
    let vacuumed =
        force || (on_our_own && !horizon_held && stats.dead > VACUUM_BASE + stats.live / 100);
    let analyzed = vacuumed || (on_our_own && stats.modified > ANALYZE_BASE + stats.live / 50);
    Maintenance {
        analyzed,
        vacuumed,
        reindexed: 0,
    }
}

/// The oldest transaction of another session, which holds the cleanup horizon back.
#[derive(QueryableByName, Debug, Clone, PartialEq)]
pub(crate) struct Holder {
    /// Its transaction id or snapshot xmin, whichever is older (as text: `xid` has no
    /// Rust type here, and only equality matters).
    #[diesel(sql_type = Nullable<Text>)]
    xid: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pid: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    since: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    query: Option<String>,
    /// How long its transaction has been open, in seconds.
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    open_for: Option<f64>,
}

/// A concurrent index rebuild waits for every transaction older than it to end; it is not
/// started while another transaction of the database has been open longer than this (a
/// queue's own transactions last milliseconds; a report or a forgotten session would keep the
/// maintenance pass waiting).
const REINDEX_IF_OPEN_AT_MOST_S: f64 = 5.0;

/// The tables maintenance looks after: the tasks, and the event log (a row per changing
/// statement, numbered by an update and pruned by a delete, so it churns as much).
const TABLES: [&str; 2] = [TASKS, "task_events"];

/// The task table: the pass answers what it did to this one.
const TASKS: &str = "tasks";

/// Table or index `name` qualified with `schema`, for the statements that run outside a
/// transaction (VACUUM, and the concurrent index builds and drops), where the unprepared
/// pool's `SET LOCAL search_path` does not reach.
pub(crate) fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => format!("\"{s}\".\"{name}\""),
        None => format!("\"{name}\""),
    }
}

/// What this store's maintenance remembers between passes: for each of [`TABLES`] the
/// horizon its last vacuum could clean up to, the holder last logged (so a holder is
/// reported once, not every 10 s), and whether it has said that it may not rebuild a bloated
/// index.
#[derive(Debug, Default)]
pub(crate) struct Horizon {
    state: Mutex<([Option<String>; TABLES.len()], Option<String>)>,
    reindex_refused: std::sync::atomic::AtomicBool,
}

const HOLDER: &str = "SELECT h.xid, h.pid, h.state, h.since, h.query, h.open_for \
     FROM (SELECT NULL) AS one \
     LEFT JOIN LATERAL (SELECT \
         (CASE WHEN age(a.backend_xid) >= coalesce(age(a.backend_xmin), 0) THEN a.backend_xid \
               ELSE a.backend_xmin END)::text AS xid, \
         a.pid, a.state, a.xact_start::text AS since, left(a.query, 200) AS query, \
         extract(epoch FROM now() - a.xact_start)::float8 AS open_for \
       FROM pg_stat_activity a \
       WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() \
         AND (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL) \
       ORDER BY greatest(coalesce(age(a.backend_xid), 0), coalesce(age(a.backend_xmin), 0)) DESC \
       LIMIT 1) AS h ON true";

const STATS: &str = "SELECT s.n_live_tup AS live, s.n_dead_tup AS dead, \
       s.n_mod_since_analyze AS modified, \
       current_setting('autovacuum') = 'on' \
         AND coalesce((SELECT lower(o.option_value) IN ('true', 'on', 'yes', '1') \
                       FROM pg_options_to_table(c.reloptions) AS o \
                       WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.relid = $1::text::regclass";

/// One housekeeping pass on `conn`; returns what it did to the task table (the event log is
/// looked after by the same rules, and logged). `last` is this store's memory of the
/// horizon each table's previous vacuum ran at. The reads run in a transaction (preceded by
/// `set_path`, the unprepared pool's schema) and VACUUM outside any, naming the table in
/// `schema`, so the pass works on a pool that keeps no session state.
pub(crate) async fn maintain(
    conn: &mut AsyncPgConnection,
    force: bool,
    last: &Horizon,
    schema: Option<&str>,
    set_path: Option<&str>,
) -> Result<Maintenance, PgError> {
    let (stats, holder) = in_schema(
        conn,
        set_path,
        async |conn| -> Result<(Vec<TableStats>, Holder), PgError> {
            let mut stats = Vec::with_capacity(TABLES.len());
            for table in TABLES {
                stats.push(
                    diesel::sql_query(STATS)
                        .bind::<Text, _>(table)
                        .get_result(conn)
                        .await?,
                );
            }
            let holder: Holder = diesel::sql_query(HOLDER).get_result(conn).await?;
            Ok((stats, holder))
        },
    )
    .await?;
    let mut tasks = Maintenance::default();
    let mut tasks_held = false;
    for (i, (name, stats)) in TABLES.iter().zip(stats).enumerate() {
        let held = held_back(last, i, name, stats, &holder, force);
        let todo = due(stats, force, held);
        let table = qualified(schema, name);
        // Simple-protocol statements: VACUUM refuses to run inside any transaction block.
        if todo.vacuumed {
            conn.batch_execute(&format!("VACUUM (ANALYZE, SKIP_LOCKED) {table}"))
                .await?;
            let mut state = last.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0[i] = holder.xid.clone();
        } else if todo.analyzed {
            conn.batch_execute(&format!("ANALYZE (SKIP_LOCKED) {table}"))
                .await?;
        }
        if todo != Maintenance::default() {
            tracing::debug!(table = name, ?stats, ?todo, "table maintained");
        }
        if *name == TASKS {
            (tasks, tasks_held) = (todo, held);
        }
    }
    // Whether or not autovacuum looks after the table (it never reindexes). Not while a
    // transaction holds the horizon or has been open for long: a concurrent rebuild waits
    // for every older snapshot to end, and it would have to keep each dead entry that
    // snapshot may still see.
    if !tasks_held && holder.open_for.unwrap_or(0.0) <= REINDEX_IF_OPEN_AT_MOST_S {
        tasks.reindexed =
            crate::reindex::reindex_bloated(conn, schema, set_path, &last.reindex_refused).await?;
    }
    Ok(tasks)
}

/// Whether table `i` (`name`) is held back: the horizon is where its last vacuum left it, so
/// a vacuum now could remove nothing. The first time a holder keeps a due vacuum from
/// running, says which session it is (once per holder, whichever table noticed).
fn held_back(
    last: &Horizon,
    i: usize,
    name: &str,
    stats: TableStats,
    holder: &Holder,
    force: bool,
) -> bool {
    let mut state = last.state.lock().unwrap_or_else(|p| p.into_inner());
    let held = holder.xid.is_some() && holder.xid == state.0[i];
    let would_vacuum = due(stats, force, false).vacuumed;
    if held && would_vacuum && !force && state.1 != holder.xid {
        tracing::warn!(
            pid = holder.pid,
            state = holder.state.as_deref().unwrap_or(""),
            since = holder.since.as_deref().unwrap_or(""),
            query = holder.query.as_deref().unwrap_or(""),
            table = name,
            dead = stats.dead,
            "vacuum skipped until this transaction ends: it holds back the cleanup horizon, \
             so a vacuum could remove none of the dead rows"
        );
        state.1 = holder.xid.clone();
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(live: i64, dead: i64, modified: i64, autovacuum: bool) -> TableStats {
        TableStats {
            live,
            dead,
            modified,
            autovacuum,
        }
    }

    #[test]
    fn autovacuum_is_left_to_its_work_unless_forced() {
        let busy = stats(1_000_000, 900_000, 900_000, true);
        assert_eq!(due(busy, false, false), Maintenance::default());
        // Forced: both, whatever the (possibly lagging) counters say.
        let both = Maintenance {
            analyzed: true,
            vacuumed: true,
            reindexed: 0,
        };
        assert_eq!(due(busy, true, false), both);
        assert_eq!(
            due(busy, true, true),
            both,
            "forced even behind a held horizon"
        );
        assert_eq!(due(stats(0, 0, 0, false), true, false), both);
    }

    #[test]
    fn without_autovacuum_the_thresholds_are_autovacuums() {
        // 1M live rows: vacuum past 1000 + 10,000 dead, analyse past 1000 + 20,000 changed.
        let quiet = stats(1_000_000, 11_000, 21_000, false);
        assert_eq!(due(quiet, false, false), Maintenance::default());
        let dead = stats(1_000_000, 11_001, 0, false);
        assert_eq!(
            due(dead, false, true),
            Maintenance::default(),
            "the horizon has not moved since the last vacuum: nothing could be removed"
        );
        assert_eq!(
            due(dead, false, false),
            Maintenance {
                analyzed: true,
                vacuumed: true,
                reindexed: 0
            }
        );
        let changed = stats(1_000_000, 0, 21_001, false);
        assert_eq!(
            due(changed, false, true),
            Maintenance {
                analyzed: true,
                vacuumed: false,
                reindexed: 0
            }
        );
        // A burst into an empty table is analysed at once: its plans depend on it.
        assert!(due(stats(0, 0, 20_000, false), false, false).analyzed);
        assert_eq!(
            due(stats(0, 0, 0, false), false, false),
            Maintenance::default()
        );
    }
}
