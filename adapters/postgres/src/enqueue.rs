//! Transactional enqueue: tasks created inside the caller's own transaction.

use crate::tasks;
use diesel_async::AsyncPgConnection;
use pgqueue_domain::{Created, Namespace, NewTask, QueueName};
use pgqueue_ports::StoreError;

/// Creates tasks on the caller's connection, inside the caller's transaction: the tasks exist
/// exactly when that transaction commits, and the wake-up is delivered only then. The time is
/// the database's `now()` (the transaction's start). NotFound for an unknown queue.
///
/// ```text
/// conn.transaction(async |conn| {
///     diesel::sql_query("INSERT INTO orders ...").execute(conn).await?;
///     pgqueue_postgres::enqueue_in(conn, &ns, &queue, &[task]).await
///         .map_err(MyError::from)
/// }).await?;
/// ```
pub async fn enqueue_in(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    queue: &QueueName,
    tasks: &[NewTask],
) -> Result<Vec<Created>, StoreError> {
    tasks::create(conn, None, ns, queue, tasks, true)
        .await
        .map_err(StoreError::from)
}
