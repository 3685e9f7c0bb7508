//! `pgqueue bench`'s long-running workload in its smoke form: `soak` with phases of seconds
//! instead of minutes, on the real binary, must report every figure of every phase.

use pgqueue_tests::binary::{pgqueue, stderr};
use pgqueue_tests::db::fresh_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_smoke_reports_every_phase() {
    let db = fresh_database().await;
    let out = tokio::process::Command::new(pgqueue())
        .args([
            "bench",
            db.url(),
            "--workload",
            "soak",
            "--soak-rate",
            "200",
            "--soak-clean",
            "3s",
            "--soak-idle",
            "3s",
            "--soak-recovery",
            "3s",
            "--soak-autovacuum",
            "off",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for phase in ["clean", "idle_in_tx", "recovery"] {
        for figure in [
            "jobs_s",
            "claim_p50_ms",
            "claim_p99_ms",
            "depth",
            "dead_tuples",
            "tables_mb",
        ] {
            let key = format!("soak_{phase}_{figure}");
            let line = text
                .lines()
                .find(|l| l.starts_with("RESULT") && l.split('\t').nth(2) == Some(key.as_str()))
                .unwrap_or_else(|| panic!("no {key} in {text}"));
            let value: f64 = line.split('\t').nth(3).unwrap().parse().unwrap();
            assert!(value.is_finite() && value >= 0.0, "{line}");
        }
        let jobs = text
            .lines()
            .find(|l| l.contains(&format!("soak_{phase}_jobs_s")))
            .and_then(|l| l.split('\t').nth(3))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(
            jobs > 100.0,
            "{phase}: kept up with a 200/s producer? {jobs}"
        );
    }
}
