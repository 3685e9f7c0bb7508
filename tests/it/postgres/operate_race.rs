//! A cancel racing a release, from two connection pools, many times: exactly one of them
//! decides the end, and the task is always in a consistent state afterwards.

use pgqueue_domain::{Namespace, Outcome, QueueMeta, QueueName, Status, TaskMeta, WorkerName};
use pgqueue_ports::{StorageClock, Store, StoreError};
use pgqueue_tests::db::fresh_database;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_a_release_leaves_one_consistent_end() {
    let db = fresh_database().await;
    let a = Arc::new(db.store(Arc::new(StorageClock)).await);
    let b = Arc::new(db.store(Arc::new(StorageClock)).await);
    let ns = Namespace::parse("race").unwrap();
    let q = QueueName::parse("q").unwrap();
    a.create_queue(&ns, &q, &QueueMeta::default().validate().unwrap())
        .await
        .unwrap();
    let w = WorkerName::parse("w").unwrap();
    for round in 0..200 {
        let new = TaskMeta::new(json!(round)).validate().unwrap();
        let id = a.create_tasks(&ns, &q, &[new]).await.unwrap()[0].task().id;
        a.retain_tasks(&ns, &w, std::slice::from_ref(&q), 1)
            .await
            .unwrap();
        let success = round % 2 == 0;
        let barrier = Arc::new(Barrier::new(2));
        let (cancel, release) = {
            let (a2, ns2, barrier2) = (a.clone(), ns.clone(), barrier.clone());
            let cancel = tokio::spawn(async move {
                barrier2.wait().await;
                a2.cancel_task(&ns2, id).await
            });
            let (b, ns, w, barrier) = (b.clone(), ns.clone(), w.clone(), barrier.clone());
            let release = tokio::spawn(async move {
                let outcome = if success {
                    Outcome::done()
                } else {
                    Outcome::failure(json!("boom")).unwrap()
                }
                .by(w);
                barrier.wait().await;
                b.release_task(&ns, id, &outcome).await
            });
            (cancel.await.unwrap(), release.await.unwrap())
        };
        let released = release.expect("the holder's release is never refused");
        let end = a.get_task(&ns, id).await.unwrap();
        assert_eq!(end.cancel_requested_at(), None, "round {round}: {end:?}");
        assert!(end.finished_at().is_some(), "round {round}: {end:?}");
        match cancel {
            // The release ended it first: the cancel found it ended (a success) or waiting
            // for its retry (a failure, which the cancel then ended).
            Err(e) => {
                assert_eq!(e, StoreError::Rule(pgqueue_domain::Error::TaskEnded));
                assert!(
                    success,
                    "round {round}: a failed attempt waits, it has not ended"
                );
                assert_eq!(end.status(), Status::Released);
            }
            Ok(_) if success => assert_eq!(end.status(), Status::Released, "round {round}"),
            Ok(_) => {
                assert_eq!(end.status(), Status::Cancelled, "round {round}");
                assert!(
                    matches!(released.status(), Status::Cancelled | Status::Retry),
                    "round {round}: {released:?}"
                );
            }
        }
    }
}
