//! What an interrupted `REINDEX … CONCURRENTLY` leaves behind, and the maintenance pass that
//! drops it without ever breaking a rebuild still in progress.

use pgqueue_ports::{StorageClock, Store};
use pgqueue_tests::db::{TestDatabase, fresh_database};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The task table's invalid indexes, by name.
async fn invalid(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = 'tasks'::regclass AND NOT i.indisvalid ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A connection inside a transaction that has written to `tasks` (holds its row-exclusive
/// lock): a concurrent rebuild waits for it before it builds.
async fn writer(db: &TestDatabase) -> tokio_postgres::Client {
    let writer = db.client().await;
    writer
        .batch_execute("BEGIN; LOCK TABLE tasks IN ROW EXCLUSIVE MODE")
        .await
        .unwrap();
    writer
}

/// Rebuilds `index` and stops the rebuild by a statement timeout while a writer keeps it
/// waiting, as a server stopped during its maintenance pass would: its copy stays behind.
async fn interrupt_a_rebuild(db: &TestDatabase, index: &str) {
    interrupt(db, &format!("REINDEX INDEX CONCURRENTLY {index}")).await;
}

/// Runs a concurrent index build and stops it by a statement timeout while a writer keeps
/// it waiting: the invalid index it made stays behind.
async fn interrupt(db: &TestDatabase, build: &str) {
    let writer = writer(db).await;
    let client = db.client().await;
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let err = client.batch_execute(build).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{err}"
    );
    writer.batch_execute("COMMIT").await.unwrap();
}

/// Whether the task table has a valid index called `name`.
async fn valid(client: &tokio_postgres::Client, name: &str) -> bool {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = 'tasks'::regclass AND i.indisvalid AND c.relname = $1)",
            &[&name],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_drops_the_copy_an_interrupted_rebuild_left() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = db.client().await;
    interrupt_a_rebuild(&db, "tasks_queue").await;
    assert_eq!(invalid(&client).await, ["tasks_queue_ccnew"]);

    store.maintain(false).await.unwrap();
    assert_eq!(invalid(&client).await, Vec::<String>::new());
    assert!(
        valid(&client, "tasks_queue").await,
        "the index itself stays"
    );
}

/// A rebuild in progress: `REINDEX INDEX CONCURRENTLY index` on a connection of its own,
/// kept waiting before its build by the returned writer's open transaction (until it
/// commits), once its invalid copy `<index>_ccnew` exists.
pub(super) async fn stalled_rebuild(
    db: &TestDatabase,
    index: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let writer = writer(db).await;
    let rebuilder = db.client().await;
    let statement = format!("REINDEX INDEX CONCURRENTLY {index}");
    let rebuild = tokio::spawn(async move { rebuilder.batch_execute(&statement).await });
    let client = db.client().await;
    let copy = format!("{index}_ccnew");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !invalid(&client).await.contains(&copy) {
        assert!(
            Instant::now() < deadline,
            "the rebuild of {index} never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (writer, rebuild)
}

/// A rebuild in progress has an invalid copy of the same kind: the pass must not take it for
/// a leftover (the rebuild would fail), nor drop a real leftover while any build is running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_never_drops_the_copy_of_a_rebuild_in_progress() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = db.client().await;
    interrupt_a_rebuild(&db, "tasks_queue").await;

    let (writer, rebuild) = stalled_rebuild(&db, "tasks_finished").await;
    let both = ["tasks_finished_ccnew", "tasks_queue_ccnew"];
    assert_eq!(invalid(&client).await, both);
    store.maintain(false).await.unwrap();
    assert_eq!(
        invalid(&client).await,
        both,
        "nothing dropped while a build runs"
    );

    writer.batch_execute("COMMIT").await.unwrap();
    rebuild.await.unwrap().unwrap();
    assert_eq!(invalid(&client).await, ["tasks_queue_ccnew"]);
    assert!(valid(&client, "tasks_finished").await);

    store.maintain(false).await.unwrap();
    assert_eq!(invalid(&client).await, Vec::<String>::new());
}

/// Only a role that may rebuild an index may drop its leftover (`DROP INDEX` needs the
/// owner too): a least-privilege runtime role's pass leaves it alone and still succeeds,
/// and the owner's pass drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_owns_nothing_leaves_a_leftover_to_the_owner() {
    let db = fresh_database().await;
    let owner = db.store(Arc::new(StorageClock)).await;
    let client = db.client().await;
    interrupt_a_rebuild(&db, "tasks_queue").await;
    let runtime = super::plans::runtime_role_store(&db, &client).await;

    for _ in 0..2 {
        runtime.maintain(false).await.unwrap();
    }
    assert_eq!(invalid(&client).await, ["tasks_queue_ccnew"]);

    owner.maintain(false).await.unwrap();
    assert_eq!(invalid(&client).await, Vec::<String>::new());
}

/// A rebuild stopped after its swap leaves the original index invalid as `<index>_ccold`.
/// Stopping one exactly there is not something a test can time, so this makes an invalid
/// index of that name the way an interrupted build does (a concurrent build stopped by a
/// statement timeout while a writer keeps it waiting): the pass drops it like a `_ccnew`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_drops_the_original_a_rebuild_stopped_after_its_swap_left() {
    let db = fresh_database().await;
    let store = db.store(Arc::new(StorageClock)).await;
    let client = db.client().await;
    interrupt(
        &db,
        "CREATE INDEX CONCURRENTLY tasks_queue_ccold ON tasks (namespace, queue, id)",
    )
    .await;
    assert_eq!(invalid(&client).await, ["tasks_queue_ccold"]);

    store.maintain(false).await.unwrap();
    assert_eq!(invalid(&client).await, Vec::<String>::new());
    assert!(valid(&client, "tasks_queue").await);
}
