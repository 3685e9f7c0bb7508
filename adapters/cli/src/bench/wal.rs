//! What a workload costs PostgreSQL in WAL: bytes per task from `pg_current_wal_lsn()`, and,
//! where the `pg_walinspect` extension can be created (PostgreSQL 15+, a superuser), the WAL
//! records per task by kind: heap inserts, non-HOT and HOT updates, row locks and B-tree
//! inserts (one per index entry written). These are the figures a storage redesign is judged
//! by (issue 17: "WAL bytes and index writes per task, before and after"); they count every
//! table the workload touches (tasks, task events, queues), and everything else the database
//! did meanwhile, so run them on a quiet database.

use super::report::Report;
use crate::error::CliError;

/// A WAL position and the connection that reads WAL statistics.
pub(super) struct Wal {
    client: tokio_postgres::Client,
    inspect: bool,
}

/// Record kinds counted per task, as `pg_get_wal_stats(…, per_record => true)` names them
/// (prefix match), and the metric suffix each is reported under.
const KINDS: [(&str, &str); 5] = [
    ("Heap/INSERT", "heap_inserts"),
    ("Heap/UPDATE", "heap_updates"),
    ("Heap/HOT_UPDATE", "hot_updates"),
    ("Heap/LOCK", "row_locks"),
    ("Btree/INSERT", "btree_inserts"),
];

fn sql_error(e: tokio_postgres::Error) -> CliError {
    match e.as_db_error() {
        Some(db) => CliError::Usage(format!("bench WAL figures: {}", db.message())),
        None => CliError::Usage(format!("bench WAL figures: {e}")),
    }
}

impl Wal {
    /// Connects to `url`, creating `pg_walinspect` when allowed (the byte count works
    /// without it).
    pub(super) async fn connect(url: &str) -> Result<Wal, CliError> {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(sql_error)?;
        tokio::spawn(conn);
        let inspect = client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            .await
            .is_ok();
        Ok(Wal { client, inspect })
    }

    /// The current WAL insert position.
    pub(super) async fn mark(&self) -> Result<String, CliError> {
        let row = self
            .client
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .map_err(sql_error)?;
        Ok(row.get(0))
    }

    /// Reports `<label>_wal_bytes_per_task` and the record kinds per task since `from`.
    pub(super) async fn report(
        &self,
        from: &str,
        label: &str,
        tasks: usize,
        report: &mut Report,
    ) -> Result<(), CliError> {
        let to = self.mark().await?;
        let tasks = tasks.max(1) as f64;
        let bytes = self
            .client
            .query_one(
                "SELECT pg_wal_lsn_diff($2::text::pg_lsn, $1::text::pg_lsn)::float8",
                &[&from, &to],
            )
            .await
            .map_err(sql_error)?
            .get::<_, f64>(0);
        report.add(
            format!("{label}_wal_bytes_per_task"),
            bytes / tasks,
            "WAL written by the workload, per task",
            None,
        );
        if !self.inspect {
            return Ok(());
        }
        // pg_walinspect reads only flushed WAL; with `synchronous_commit = off` the last
        // commits reach the disk within `wal_writer_delay`.
        for _ in 0..50 {
            let flushed: bool = self
                .client
                .query_one(
                    "SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn",
                    &[&to],
                )
                .await
                .map_err(sql_error)?
                .get(0);
            if flushed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let rows = self
            .client
            .query(
                // The first two columns: the record type (its name differs between
                // versions) and the count.
                "SELECT * FROM pg_get_wal_stats($1::text::pg_lsn, $2::text::pg_lsn, true)",
                &[&from, &to],
            )
            .await
            .map_err(sql_error)?;
        for (prefix, suffix) in KINDS {
            let count: i64 = rows
                .iter()
                .filter(|r| r.get::<_, String>(0).starts_with(prefix))
                .map(|r| r.get::<_, i64>(1))
                .sum();
            report.add(
                format!("{label}_{suffix}_per_task"),
                count as f64 / tasks,
                format!("{prefix}* WAL records per task (pg_walinspect)"),
                None,
            );
        }
        Ok(())
    }
}
