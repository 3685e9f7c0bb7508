//! Housekeeping of the task table when the database will not do it.
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

use crate::error::PgError;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use pgqueue_ports::Maintenance;

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
/// looks after it; otherwise what autovacuum would have done by now.
pub(crate) fn due(stats: TableStats, force: bool) -> Maintenance {
    let on_our_own = !stats.autovacuum;
    let vacuumed = force || (on_our_own && stats.dead > VACUUM_BASE + stats.live / 100);
    let analyzed = vacuumed || (on_our_own && stats.modified > ANALYZE_BASE + stats.live / 50);
    Maintenance { analyzed, vacuumed }
}

const STATS: &str = "SELECT s.n_live_tup AS live, s.n_dead_tup AS dead, \
       s.n_mod_since_analyze AS modified, \
       current_setting('autovacuum') = 'on' \
         AND coalesce((SELECT lower(o.option_value) IN ('true', 'on', 'yes', '1') \
                       FROM pg_options_to_table(c.reloptions) AS o \
                       WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.relid = 'tasks'::regclass";

/// One housekeeping pass on `conn`; returns what it did.
pub(crate) async fn maintain(
    conn: &mut AsyncPgConnection,
    force: bool,
) -> Result<Maintenance, PgError> {
    let stats: TableStats = diesel::sql_query(STATS).get_result(conn).await?;
    let todo = due(stats, force);
    // Simple-protocol statements: VACUUM refuses to run inside any transaction block.
    if todo.vacuumed {
        conn.batch_execute("VACUUM (ANALYZE, SKIP_LOCKED) tasks")
            .await?;
    } else if todo.analyzed {
        conn.batch_execute("ANALYZE (SKIP_LOCKED) tasks").await?;
    }
    if todo != Maintenance::default() {
        tracing::debug!(?stats, ?todo, "task table maintained");
    }
    Ok(todo)
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
        assert_eq!(due(busy, false), Maintenance::default());
        // Forced: both, whatever the (possibly lagging) counters say.
        let both = Maintenance {
            analyzed: true,
            vacuumed: true,
        };
        assert_eq!(due(busy, true), both);
        assert_eq!(due(stats(0, 0, 0, false), true), both);
    }

    #[test]
    fn without_autovacuum_the_thresholds_are_autovacuums() {
        // 1M live rows: vacuum past 1000 + 10,000 dead, analyse past 1000 + 20,000 changed.
        let quiet = stats(1_000_000, 11_000, 21_000, false);
        assert_eq!(due(quiet, false), Maintenance::default());
        let dead = stats(1_000_000, 11_001, 0, false);
        assert_eq!(
            due(dead, false),
            Maintenance {
                analyzed: true,
                vacuumed: true
            }
        );
        let changed = stats(1_000_000, 0, 21_001, false);
        assert_eq!(
            due(changed, false),
            Maintenance {
                analyzed: true,
                vacuumed: false
            }
        );
        // A burst into an empty table is analysed at once: its plans depend on it.
        assert!(due(stats(0, 0, 20_000, false), false).analyzed);
        assert_eq!(due(stats(0, 0, 0, false), false), Maintenance::default());
    }
}
