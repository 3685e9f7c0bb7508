use super::*;
use pgqueue_ports::{MockStore, Signal};
use std::sync::atomic::AtomicUsize;

#[test]
fn default_names_are_unique_per_process_and_runtime() {
    let (a, b) = (default_name(), default_name());
    let pid = std::process::id().to_string();
    assert!(a.contains('@') && a.contains(&pid), "{a}");
    assert_ne!(a, b);
}

/// An idle worker looks once, then only on its safety poll: no busy polling.
#[tokio::test(start_paused = true)]
async fn an_idle_worker_does_not_busy_poll() {
    let claims = Arc::new(AtomicUsize::new(0));
    let counted = claims.clone();
    let mut store = MockStore::new();
    let signal = Signal::default();
    store.expect_signal().returning(move || signal.clone());
    store.expect_retain_tasks().returning(move |_, _, _, _| {
        // A busy poller would never let paused time advance; failing after 50 claims
        // makes it back off (and the count below fail) instead of hanging the test.
        if counted.fetch_add(1, Ordering::SeqCst) >= 50 {
            return Err(pgqueue_ports::StoreError::Unavailable(
                "too many claims".into(),
            ));
        }
        Ok(Default::default())
    });
    let manager = Manager::new(Arc::new(store));
    let worker = Worker::new(manager)
        .poll_interval(Duration::from_secs(1))
        .handle("q", |_| async { Ok::<_, String>(Value::Null) })
        .unwrap();
    // Ten seconds of (paused, auto-advancing) time with nothing to do.
    let report = worker
        .run(tokio::time::sleep(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(report, WorkerReport::default());
    let n = claims.load(Ordering::SeqCst);
    assert!(
        (9..=12).contains(&n),
        "one claim at start and one per 1 s poll, got {n}"
    );
}
