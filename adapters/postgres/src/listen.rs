//! Wake-ups from LISTEN/NOTIFY on one dedicated connection per store.
//!
//! Statements that make work available notify channel [`CHANNEL`] with `task:<ns>:<queue>` or
//! `ticker:<ns>` (names cannot contain `:`). The listener turns them into
//! [`Wakeup`]s on the store's [`Signal`]. The connection is never
//! pooled: a pooled connection would be handed to a statement and stop listening. When it
//! dies, the listener reconnects with backoff, listens again and sends [`Wakeup::Resync`]
//! because notifications sent meanwhile are lost. It stops when the store is dropped or
//! closed.

use crate::connect::ConnSpec;
use crate::error::PgError;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::StreamExt;
use pgqueue_domain::{Namespace, QueueName};
use pgqueue_ports::{Signal, Wakeup};
use std::time::Duration;
use tokio::sync::watch;

/// The notification channel pgqueue uses.
pub(crate) const CHANNEL: &str = "pgqueue";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Opens a listening connection.
pub(crate) async fn subscribe(spec: &ConnSpec) -> Result<AsyncPgConnection, PgError> {
    let mut conn = spec.establish().await?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(conn)
}

/// Parses a notification payload into a wake-up; `None` for anything unknown.
pub(crate) fn parse(payload: &str) -> Option<Wakeup> {
    let mut parts = payload.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("task"), Some(ns), Some(queue), None) => Some(Wakeup::Task {
            namespace: Namespace::parse(ns).ok()?,
            queue: QueueName::parse(queue).ok()?,
        }),
        (Some("ticker"), Some(ns), None, None) => Some(Wakeup::Ticker {
            namespace: Namespace::parse(ns).ok()?,
        }),
        _ => None,
    }
}

/// Relays notifications until `stop` fires (or its sender, the store, is dropped).
pub(crate) async fn run(
    spec: ConnSpec,
    mut conn: AsyncPgConnection,
    signal: Signal,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        {
            let mut stream = std::pin::pin!(conn.notifications_stream());
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    item = stream.next() => match item {
                        Some(Ok(n)) => match parse(&n.payload) {
                            Some(w) => signal.send(w),
                            None => tracing::debug!(payload = %n.payload, "unknown notification"),
                        },
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "pgqueue listener connection failed");
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
        let mut delay = FIRST_RETRY;
        conn = loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match subscribe(&spec).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "pgqueue listener cannot reconnect");
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        };
        tracing::info!("pgqueue listener reconnected");
        signal.send(Wakeup::Resync);
    }
}

/// Sends `payload` on [`CHANNEL`] from `conn` (delivered when its transaction commits).
pub(crate) async fn notify(conn: &mut AsyncPgConnection, payload: &str) -> Result<(), PgError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(CHANNEL)
        .bind::<diesel::sql_types::Text, _>(payload)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_map_to_wakeups() {
        assert_eq!(
            parse("task:default:emails"),
            Some(Wakeup::Task {
                namespace: Namespace::default(),
                queue: QueueName::parse("emails").unwrap()
            })
        );
        assert_eq!(
            parse("ticker:pgqueue"),
            Some(Wakeup::Ticker {
                namespace: Namespace::system()
            })
        );
        assert_eq!(parse("task:default"), None);
        assert_eq!(parse("other"), None);
    }
}
