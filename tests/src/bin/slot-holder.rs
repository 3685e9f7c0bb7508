//! A worker process for the flow-control tests: an embedded worker runtime on one queue of
//! a PostgreSQL database whose handler never returns, so a test can SIGKILL the process
//! while it holds the queue's slots. Prints `holding <payload>` for every task it starts.
//!
//! Usage: `slot-holder <database url> <queue>`.

use pgqueue_app::{Manager, Worker};
use pgqueue_postgres::{PgOptions, PgStore};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(queue)) = (args.next(), args.next()) else {
        return Err("usage: slot-holder <database url> <queue>".into());
    };
    let store = PgStore::connect(&url, PgOptions::default()).await?;
    let manager = Manager::new(Arc::new(store));
    let worker = Worker::new(manager).concurrency(1).prefetch(0).handle(
        &queue,
        |payload: Value| async move {
            println!("holding {payload}");
            let _ = std::io::stdout().flush();
            std::future::pending::<Result<Value, String>>().await
        },
    )?;
    worker.run(std::future::pending()).await?;
    Ok(())
}
