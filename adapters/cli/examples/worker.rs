//! Embed pgqueue in a Rust program: a queue, a handler, tasks, and the runtimes.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p pgqueue-cli --example worker`
//! (without DATABASE_URL it runs on the in-memory store).
use pgqueue_app::{Manager, Runtime, RuntimeConfig, Worker};
use pgqueue_domain::{QueueMeta, TaskMeta};
use pgqueue_ports::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn Store> = match std::env::var("DATABASE_URL") {
        Ok(url) => Arc::new(pgqueue_postgres::PgStore::connect(&url, Default::default()).await?),
        Err(_) => Arc::new(pgqueue_memory::MemoryStore::default()),
    };
    let manager = Manager::new(store).with_namespace("example")?;
    manager
        .register_queue(QueueMeta {
            queue: Some("greetings".into()),
            retries: Some(2),
            ..Default::default()
        })
        .await?;
    for name in ["Ada", "Grace", "Edsger"] {
        manager
            .create_task("greetings", TaskMeta::new(json!({ "name": name })))
            .await?
            .into_task();
    }

    let worker = Worker::new(manager.clone()).concurrency(2).handle(
        "greetings",
        |payload: Value| async move {
            let name = payload["name"].as_str().ok_or("payload has no name")?;
            println!("hello, {name}!");
            Ok::<_, &str>(json!({ "greeted": name }))
        },
    )?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let background = tokio::spawn(
        Runtime::new(manager.clone(), RuntimeConfig::default()).run(until_stopped(stopped.clone())),
    );
    let running = tokio::spawn(worker.run(until_stopped(stopped)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true)?;
    let report = running.await??;
    background.await?;
    println!(
        "processed: {} succeeded, {} failed",
        report.succeeded, report.failed
    );
    manager.delete_queue("greetings").await?;
    Ok(())
}
