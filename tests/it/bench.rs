//! `pgqueue bench`'s long-running workloads in their smoke form, on the real binary: `soak`
//! with phases of seconds instead of minutes (over three queues) must report every figure of
//! every phase;
//! `churn` for seconds instead of an hour its before/after figures; W1b and W2 their WAL
//! figures per task.

use pgqueue_tests::binary::{pgqueue, stderr};
use pgqueue_tests::db::{TestDatabase, fresh_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_smoke_reports_every_phase() {
    let db = fresh_database().await;
    let text = bench(
        &db,
        &[
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
            "--soak-queues",
            "3",
        ],
    )
    .await;
    assert!(text.contains("over 3 queues"), "{text}");
    for phase in ["clean", "idle_in_tx", "recovery"] {
        for name in [
            "jobs_s",
            "claim_p50_ms",
            "claim_p99_ms",
            "depth",
            "dead_tuples",
            "tables_mb",
        ] {
            let value = figure(&text, &format!("soak_{phase}_{name}"));
            assert!(
                value.is_finite() && value >= 0.0,
                "soak_{phase}_{name}: {value}"
            );
        }
        let jobs = figure(&text, &format!("soak_{phase}_jobs_s"));
        assert!(
            jobs > 100.0,
            "{phase}: kept up with a 200/s producer over three queues? {jobs}"
        );
    }
}

/// Runs `pgqueue bench <db> <args…>`, which must succeed; answers what it printed.
async fn bench(db: &TestDatabase, args: &[&str]) -> String {
    let out = tokio::process::Command::new(pgqueue())
        .arg("bench")
        .arg(db.url())
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The figure `key` of a bench run's output.
fn figure(text: &str, key: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT") && l.split('\t').nth(2) == Some(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"));
    line.split('\t').nth(3).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_churn_smoke_and_the_wal_figures_are_reported() {
    let db = fresh_database().await;
    let text = bench(
        &db,
        &[
            "--workload",
            "churn",
            "--workload",
            "W1b",
            "--tasks",
            "1000",
            "--concurrency",
            "8",
            "--churn-duration",
            "2s",
        ],
    )
    .await;
    assert!(figure(&text, "churn_tasks") >= 1000.0, "{text}");
    for name in ["W1b", "W2_c8"] {
        let before = figure(&text, &format!("churn_{name}_before_jobs_s"));
        let after = figure(&text, &format!("churn_{name}_after_jobs_s"));
        assert!(before > 0.0 && after > 0.0, "{text}");
        let ratio = figure(&text, &format!("churn_{name}_ratio"));
        assert!((ratio - after / before).abs() < 0.01, "{text}");
    }
    // One task row and its index entries per created task: the WAL figures are per task.
    let wal = figure(&text, "W1b_wal_bytes_per_task");
    assert!(wal > 100.0 && wal < 10_000.0, "{text}");
    // pg_walinspect needs a superuser; the test database's role is one here.
    assert_eq!(
        figure(&text, "W1b_heap_inserts_per_task").round(),
        1.0,
        "{text}"
    );
    assert!(figure(&text, "W1b_btree_inserts_per_task") >= 3.0, "{text}");
}
