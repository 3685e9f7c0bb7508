//! Unique keys under contention: 64 concurrent creates of one key from two processes (this
//! one, with two connection pools and 24 transactions of its callers, half of which roll back;
//! and a `pgqueue run` server taking 16 of them over HTTP), 20 rounds. Each round exactly one
//! task with the key exists afterwards, every caller told "existing" was told about that
//! committed task, and no rolled-back task was ever given to anyone as existing.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use pgqueue_client::Created as ClientCreated;
use pgqueue_domain::{Created, Namespace, QueueMeta, QueueName, TaskMeta};
use pgqueue_ports::{StorageClock, Store};
use pgqueue_tests::binary::Server;
use pgqueue_tests::db::fresh_database;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;

/// What one creator was told, and whether its transaction committed.
#[derive(Debug, Clone, Copy)]
enum Answer {
    New { id: i64, committed: bool },
    Existing(i64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_one_task_across_processes_and_rollbacks() {
    let db = fresh_database().await;
    let a = Arc::new(db.store(Arc::new(StorageClock)).await);
    let b = Arc::new(db.store(Arc::new(StorageClock)).await);
    let server = Server::start_with(Some(db.url()), "127.0.0.1:0", &[], &[]).await;
    let client = server.client();
    let ns = Namespace::parse("default").unwrap();
    let q = QueueName::parse("race").unwrap();
    a.create_queue(&ns, &q, &QueueMeta::default().validate().unwrap())
        .await
        .unwrap();
    let mut conns = Vec::new();
    for _ in 0..24 {
        conns.push(Arc::new(tokio::sync::Mutex::new(
            AsyncPgConnection::establish(db.url()).await.unwrap(),
        )));
    }
    for round in 0..20 {
        let key = format!("key-{round}");
        let barrier = Arc::new(Barrier::new(64));
        let mut callers = Vec::new();
        for (i, conn) in conns.iter().enumerate() {
            let (conn, barrier, ns, q, key) = (
                conn.clone(),
                barrier.clone(),
                ns.clone(),
                q.clone(),
                key.clone(),
            );
            callers.push(tokio::spawn(async move {
                let new = TaskMeta::new(json!({"by": i}))
                    .unique_key(key)
                    .validate()
                    .unwrap();
                let mut conn = conn.lock().await;
                barrier.wait().await;
                let commit = i % 2 == 0;
                let mut told = None;
                let outcome = conn
                    .transaction::<(), diesel::result::Error, _>(async |c| {
                        let created = pgqueue_postgres::enqueue_in(c, &ns, &q, &[new])
                            .await
                            .unwrap();
                        told = Some(match &created[0] {
                            Created::New(t) => Answer::New {
                                id: t.id,
                                committed: commit,
                            },
                            Created::Existing(t) => Answer::Existing(t.id),
                        });
                        if commit {
                            Ok(())
                        } else {
                            Err(diesel::result::Error::RollbackTransaction)
                        }
                    })
                    .await;
                assert_eq!(outcome.is_ok(), commit);
                told.unwrap()
            }));
        }
        for i in 0..24 {
            let (b, barrier, ns, q, key) = (
                b.clone(),
                barrier.clone(),
                ns.clone(),
                q.clone(),
                key.clone(),
            );
            callers.push(tokio::spawn(async move {
                let new = TaskMeta::new(json!({"store": i}))
                    .unique_key(key)
                    .validate()
                    .unwrap();
                barrier.wait().await;
                match b.create_tasks(&ns, &q, &[new]).await.unwrap().remove(0) {
                    Created::New(t) => Answer::New {
                        id: t.id,
                        committed: true,
                    },
                    Created::Existing(t) => Answer::Existing(t.id),
                }
            }));
        }
        for i in 0..16 {
            let (client, barrier, key) = (client.clone(), barrier.clone(), key.clone());
            callers.push(tokio::spawn(async move {
                let meta = TaskMeta::new(json!({"http": i})).unique_key(key);
                barrier.wait().await;
                match client.create_task("race", &meta).await.unwrap() {
                    ClientCreated::New(t) => Answer::New {
                        id: t.id,
                        committed: true,
                    },
                    ClientCreated::Existing(t) => Answer::Existing(t.id),
                }
            }));
        }
        let mut answers = Vec::new();
        for c in callers {
            answers.push(c.await.unwrap());
        }
        let rows = super::strings(
            db.url(),
            &format!(
                "SELECT id::text FROM tasks WHERE unique_key = 'key-{round}' \
                 AND state IN ('new', 'retry', 'retained')"
            ),
        )
        .await;
        assert_eq!(rows.len(), 1, "round {round}: {rows:?}");
        let the_task: i64 = rows[0].parse().unwrap();
        let rolled_back: HashSet<i64> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::New {
                    id,
                    committed: false,
                } => Some(*id),
                _ => None,
            })
            .collect();
        let committed_new: Vec<i64> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::New {
                    id,
                    committed: true,
                } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(committed_new, vec![the_task], "round {round}: {answers:?}");
        for a in &answers {
            if let Answer::Existing(id) = a {
                assert_eq!(*id, the_task, "round {round}: told about {id}");
                assert!(
                    !rolled_back.contains(id),
                    "round {round}: a rolled-back task"
                );
            }
        }
    }
}
