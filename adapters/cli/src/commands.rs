//! The client commands: each sends one request to a running server through `pgqueue-client`
//! and prints the answer as indented JSON on stdout.

use crate::cli::{Command, PageArgs, QueueArgs, Setting, TickerArgs};
use crate::error::CliError;
use futures::StreamExt;
use pgqueue_client::{Client, Listing, Release, TaskQuery};
use pgqueue_domain::limits::DEFAULT_BURST;
use pgqueue_domain::{QueueMeta, Rate, Status, TaskMeta, TickerMeta};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Prints a value as indented JSON.
fn print<T: Serialize>(value: &T) -> Result<(), CliError> {
    let json = serde_json::to_value(value)?;
    match crate::output::format() {
        crate::output::Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        crate::output::Format::Table => {
            println!("{}", crate::output::table(&json, chrono::Utc::now()))
        }
    }
    Ok(())
}

/// Prints a list in the server's own envelope: `{"count": N, "body": [...]}` (body omitted
/// when empty), so scripts see the same shape as the HTTP API.
fn print_list<T: Serialize>(list: Listing<T>) -> Result<(), CliError> {
    #[derive(Serialize)]
    struct Envelope<T> {
        count: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        body: Vec<T>,
    }
    print(&Envelope {
        count: list.count,
        body: list.items,
    })
}

fn queue_meta(name: Option<String>, p: QueueArgs) -> Result<QueueMeta, CliError> {
    let rate = match p.rate.map(Setting::into_patch) {
        None => None,
        Some(None) => Some(None),
        Some(Some(per_second)) => {
            let burst = match p.burst {
                None => DEFAULT_BURST,
                Some(b) => u32::try_from(b)
                    .map_err(|_| CliError::Usage(format!("invalid --burst: {b}")))?,
            };
            let rate = Rate::new(per_second, burst).map_err(pgqueue_app::Error::from)?;
            Some(Some(rate))
        }
    };
    Ok(QueueMeta {
        queue: name,
        ttl: p.ttl,
        retries: p.retries,
        retry_delay: p.retry_delay,
        lease: p.lease,
        max_running: p.max_running.map(Setting::into_patch),
        rate,
        ..Default::default()
    })
}

fn ticker_meta(name: Option<String>, f: TickerArgs) -> TickerMeta {
    TickerMeta {
        ticker: name,
        payload: f.payload,
        interval: f.interval,
        cron: f.cron,
        timezone: f.timezone,
        queue: f.queue.map(|q| Some(q).filter(|q| !q.trim().is_empty())),
        priority: f.priority.map(Some),
        ..Default::default()
    }
}

/// `--status` values, parsed (repeatable, or comma-separated).
fn statuses(raw: &[String]) -> Result<Vec<Status>, CliError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
        .map(|s| Status::parse(s).map_err(|e| CliError::Usage(e.to_string())))
        .collect()
}

/// The `{"count":N}` a redrive or purge answers.
fn count(n: u64) -> Value {
    serde_json::json!({ "count": n })
}

/// Runs a client command against the server at `base` (`http://host:port/prefix`).
pub async fn run(client: Client, command: Command) -> Result<(), CliError> {
    let PageArgs { offset, limit } = match &command {
        Command::Queues(p) | Command::Tickers(p) => *p,
        _ => PageArgs {
            offset: None,
            limit: None,
        },
    };
    match command {
        Command::Namespaces => print_list(client.list_namespaces().await?),
        Command::Queues(_) => print_list(client.list_queues(offset, limit).await?),
        Command::Queue { name } => print(&client.get_queue(&name).await?),
        Command::CreateQueue { name, policy } => print(
            &client
                .create_queue(&queue_meta(Some(name), policy)?)
                .await?,
        ),
        Command::UpdateQueue { name, policy } => print(
            &client
                .update_queue(&name, &queue_meta(None, policy)?)
                .await?,
        ),
        Command::DeleteQueue { name } => print(&client.delete_queue(&name).await?),
        Command::Tasks {
            queue,
            status,
            page,
        } => {
            let status = status
                .as_deref()
                .map(Status::parse)
                .transpose()
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let query = TaskQuery {
                queue,
                status,
                offset: page.offset,
                limit: page.limit,
            };
            print_list(client.list_tasks(&query).await?)
        }
        Command::Task { id } => print(&client.get_task(id).await?),
        Command::CreateTask {
            queue,
            payload,
            delayed_at,
            priority,
            unique_key,
        } => print(
            client
                .create_task(
                    &queue,
                    &TaskMeta {
                        payload: Some(payload),
                        delayed_at,
                        priority,
                        unique_key,
                    },
                )
                .await?
                .task(),
        ),
        Command::RetainTask { queues, worker } => {
            let queues: Vec<&str> = queues.iter().map(String::as_str).collect();
            match client.retain_task(&worker, &queues).await? {
                Some(task) => print(&task),
                None => print(&Value::Null),
            }
        }
        Command::CompleteTask {
            id,
            error,
            result,
            worker,
        } => {
            let mut release = match error {
                Some(e) => Release::failure(e),
                None => Release::success(result),
            };
            if let Some(w) = worker {
                release = release.by(w);
            }
            print(&client.release_task(id, release).await?)
        }
        Command::Tickers(_) => print_list(client.list_tickers(offset, limit).await?),
        Command::Ticker { name } => print(&client.get_ticker(&name).await?),
        Command::CreateTicker { name, fields } => print(
            &client
                .create_ticker(&ticker_meta(Some(name), fields))
                .await?,
        ),
        Command::UpdateTicker { name, fields } => print(
            &client
                .update_ticker(&name, &ticker_meta(None, fields))
                .await?,
        ),
        Command::TickerSchedule { name, n, from } => {
            print_list(client.ticker_schedule(&name, Some(n), from).await?)
        }
        Command::DeleteTicker { name } => print(&client.delete_ticker(&name).await?),
        Command::CancelTask { id } => print(&client.cancel_task(id).await?),
        Command::RetryTask { id } => print(&client.retry_task(id).await?),
        Command::RetryTasks {
            queue,
            status,
            limit,
        } => print(&count(
            client
                .retry_tasks(&queue, &statuses(&status)?, limit)
                .await?,
        )),
        Command::DeleteTask { id } => print(&client.delete_task(id).await?),
        Command::PurgeTasks { status, queue } => print(&count(
            client
                .purge_tasks(&statuses(&status)?, queue.as_deref())
                .await?,
        )),
        Command::PauseQueue { name } => print(&client.pause_queue(&name, true).await?),
        Command::ResumeQueue { name } => print(&client.pause_queue(&name, false).await?),
        Command::PauseTicker { name } => print(&client.pause_ticker(&name, true).await?),
        Command::ResumeTicker { name } => print(&client.pause_ticker(&name, false).await?),
        Command::NextTicker => next_ticker(&client).await,
        Command::Bench(_)
        | Command::Completions { .. }
        | Command::Run(_)
        | Command::Token { .. }
        | Command::Migrate { .. } => Err(CliError::Usage("not a client command".into())),
    }
}

/// Streams events until Ctrl-C, reconnecting with exponential backoff (0.5 s doubling to 30 s,
/// reset after a healthy connection).
async fn next_ticker(client: &Client) -> Result<(), CliError> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut backoff = Duration::from_millis(500);
    loop {
        let session = async {
            let mut events = client.next_ticker().await?;
            while let Some(event) = events.next().await {
                let event = event?;
                println!("[{}] {}", event.event, event.data);
            }
            Ok::<(), CliError>(())
        };
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            ended = session => match ended {
                Ok(()) => {
                    eprintln!("stream ended; reconnecting");
                    backoff = Duration::from_millis(500);
                }
                Err(CliError::Client(pgqueue_client::ClientError::Api { status, reason, .. })) if (400..500).contains(&status) => {
                    return Err(CliError::Usage(reason));
                }
                Err(e) => eprintln!("Error: {e}; reconnecting in {backoff:?}"),
            },
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
