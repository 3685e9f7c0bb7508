//! The database's own ceiling, measured with pgbench on a scratch table with the shapes a
//! queue needs: an insert, a one-statement claim-and-finish, a claim and a finish as two
//! transactions, and the batched shape (claim 100 in one statement, finish them in one more). pgqueue's figures are printed as ratios of these, measured minutes apart on
//! the same machine, so a reader can tell the queue's overhead from the machine's limits.

use crate::error::CliError;
use std::collections::BTreeMap;
use std::process::Command;

const SETUP: &str = "DROP TABLE IF EXISTS pgqueue_ceiling;
CREATE TABLE pgqueue_ceiling (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL DEFAULT 'new',
  payload JSONB NOT NULL DEFAULT '{}', created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE INDEX pgqueue_ceiling_new ON pgqueue_ceiling (id) WHERE state = 'new';";

const REFILL: &str = "TRUNCATE pgqueue_ceiling;
INSERT INTO pgqueue_ceiling (payload) SELECT '{\"k\":1}' FROM generate_series(1, 300000);
VACUUM ANALYZE pgqueue_ceiling;";

const INSERT: &str = "INSERT INTO pgqueue_ceiling (payload) VALUES ('{\"k\":1}');\n";

const CLAIM_FINISH_ONE: &str = "UPDATE pgqueue_ceiling SET state = 'done' WHERE id = (SELECT id FROM pgqueue_ceiling \
WHERE state = 'new' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1);\n";

const CLAIM_THEN_FINISH: &str = "UPDATE pgqueue_ceiling SET state = 'running' WHERE id = (SELECT id FROM pgqueue_ceiling \
WHERE state = 'new' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id AS claimed \\gset\n\
UPDATE pgqueue_ceiling SET state = 'done' WHERE id = :claimed;\n";

/// Tasks one statement of [`CLAIM_100_THEN_FINISH`] claims.
const BATCH: f64 = 100.0;

/// The batched shape: claim up to 100 with `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
/// LOCKED LIMIT 100)`, then finish them by id (`0` when none was left, a no-op).
const CLAIM_100_THEN_FINISH: &str = "WITH c AS (UPDATE pgqueue_ceiling SET state = 'running' WHERE id IN \
(SELECT id FROM pgqueue_ceiling WHERE state = 'new' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100) RETURNING id) \
SELECT coalesce(string_agg(id::text, ','), '0') AS claimed FROM c \\gset\n\
UPDATE pgqueue_ceiling SET state = 'done' WHERE id IN (:claimed);\n";

/// Enough rows that the batched shape never runs dry within a measurement of `seconds`
/// (200,000 a second is above what this shape reaches on the project's machines).
fn refill_batch(seconds: u32) -> String {
    let rows = 200_000u64 * u64::from(seconds.max(1));
    format!(
        "TRUNCATE pgqueue_ceiling;\nINSERT INTO pgqueue_ceiling (payload) SELECT '{{\"k\":1}}' \
         FROM generate_series(1, {rows});\nVACUUM ANALYZE pgqueue_ceiling;"
    )
}

/// Runs SQL with psql, one statement at a time (from stdin, so VACUUM is not wrapped in a
/// transaction as `-c` would do).
pub(crate) fn psql(url: &str, sql: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| CliError::Usage(format!("cannot run psql (needed for --ceiling): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(sql.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(CliError::Usage(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Runs one pgbench script and returns its transactions per second.
fn pgbench(url: &str, script: &str, clients: usize, seconds: u32) -> Result<f64, CliError> {
    let path = std::env::temp_dir().join(format!(
        "pgqueue-ceiling-{}-{clients}.sql",
        std::process::id()
    ));
    std::fs::write(&path, script)?;
    let threads = clients.clamp(1, 2).to_string();
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &threads,
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .map_err(|e| CliError::Usage(format!("cannot run pgbench (needed for --ceiling): {e}")))?;
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse_tps(&stdout).ok_or_else(|| {
        CliError::Usage(format!(
            "pgbench gave no tps: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })
}

/// Finds `tps = 1234.5` in pgbench's output.
fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|l| l.trim_start().starts_with("tps ="))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Measures every shape at 1 client (insert) and at each of `concurrency`.
pub fn measure(
    url: &str,
    concurrency: &[usize],
    seconds: u32,
) -> Result<BTreeMap<String, f64>, CliError> {
    psql(url, SETUP)?;
    let mut out = BTreeMap::new();
    out.insert("insert_c1".into(), pgbench(url, INSERT, 1, seconds)?);
    for &c in concurrency {
        out.insert(format!("insert_c{c}"), pgbench(url, INSERT, c, seconds)?);
        psql(url, REFILL)?;
        out.insert(
            format!("claim_finish_1stmt_c{c}"),
            pgbench(url, CLAIM_FINISH_ONE, c, seconds)?,
        );
        psql(url, REFILL)?;
        out.insert(
            format!("claim_finish_2tx_c{c}"),
            pgbench(url, CLAIM_THEN_FINISH, c, seconds)?,
        );
        psql(url, &refill_batch(seconds))?;
        // Tasks per second: each transaction claims and finishes up to 100.
        out.insert(
            format!("claim_finish_100_c{c}"),
            pgbench(url, CLAIM_100_THEN_FINISH, c, seconds)? * BATCH,
        );
    }
    psql(url, "DROP TABLE IF EXISTS pgqueue_ceiling;")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tps_from_pgbench_output() {
        let out = "number of transactions actually processed: 31426\nlatency average = 2.545 ms\n\
                   initial connection time = 12.1 ms\ntps = 3142.612345 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(3142.612345));
        assert_eq!(parse_tps("nothing"), None);
    }
}
