//! Wake-ups from LISTEN/NOTIFY on one dedicated connection per store.
//!
//! Statements that make work available notify channel [`CHANNEL`] with `task:<ns>:<queue>` or
//! `ticker:<ns>` (names cannot contain `:`). The listener turns them into
//! [`Wakeup`]s on the store's [`Signal`]. An operator's retry or a rename, which put tasks
//! below what claims know of their queue's floors (`tasks/floors.rs`), also send (and so
//! does a create late in a long transaction)
//! `floor:<ns>:<queue>`, on which every store forgets that queue's floors. The connection is never
//! pooled: a pooled connection would be handed to a statement and stop listening. When it
//! dies, the listener reconnects with backoff, listens again and sends [`Wakeup::Resync`]
//! because notifications sent meanwhile are lost. It stops when the store is dropped or
//! closed.

use crate::connect::ConnSpec;
use crate::error::PgError;
use crate::store::PgStore;
use crate::tasks::Floors;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::StreamExt;
use pgqueue_domain::{Namespace, QueueName};
use pgqueue_ports::{Signal, Store, Wakeup};
use std::sync::Arc;
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

/// What a notification says.
#[derive(Debug, PartialEq)]
pub(crate) enum Heard {
    /// Work may be there: tell the store's signal.
    Wake(Wakeup),
    /// Tasks of this queue may wait below its floors: forget them (a `task:` notification
    /// for the queue comes with it, so processes that do not know this one still wake).
    BelowFloors(Namespace, QueueName),
}

/// Parses a notification payload; `None` for anything unknown.
pub(crate) fn parse(payload: &str) -> Option<Heard> {
    let mut parts = payload.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("task"), Some(ns), Some(queue), None) => Some(Heard::Wake(Wakeup::Task {
            namespace: Namespace::parse(ns).ok()?,
            queue: QueueName::parse(queue).ok()?,
        })),
        (Some("ticker"), Some(ns), None, None) => Some(Heard::Wake(Wakeup::Ticker {
            namespace: Namespace::parse(ns).ok()?,
        })),
        (Some("floor"), Some(ns), Some(queue), None) => Some(Heard::BelowFloors(
            Namespace::parse(ns).ok()?,
            QueueName::parse(queue).ok()?,
        )),
        _ => None,
    }
}

/// Tells every store that tasks of `queue` wait below its floors, and wakes its workers
/// (delivered when the transaction commits: a claim that then forgets sees the tasks).
pub(crate) async fn notify_below_floors(
    conn: &mut AsyncPgConnection,
    ns: &Namespace,
    queue: &QueueName,
) -> Result<(), PgError> {
    notify_all(
        conn,
        vec![format!("task:{ns}:{queue}"), format!("floor:{ns}:{queue}")],
    )
    .await
}

/// Sends each of `payloads` on [`CHANNEL`] from `conn`, in one statement.
pub(crate) async fn notify_all(
    conn: &mut AsyncPgConnection,
    payloads: Vec<String>,
) -> Result<(), PgError> {
    diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind::<diesel::sql_types::Text, _>(CHANNEL)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(payloads)
        .execute(conn)
        .await?;
    Ok(())
}

/// How long the start-up check waits for its own notification.
const ROUND_TRIP: Duration = Duration::from_secs(1);
/// How often everyone looks when notifications cannot arrive.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Where wake-ups come from, as the start-up check found.
pub(crate) enum Listening {
    /// The listening connection received its own NOTIFY.
    Notify(Box<AsyncPgConnection>),
    /// It did not (a transaction-mode pooler hands LISTEN's session to others): a timer.
    Poll,
}

/// Opens the listening connection and checks that it hears: it LISTENs on a channel of its
/// own, sends a NOTIFY there through the store's pool and waits [`ROUND_TRIP`] for it.
/// Behind a transaction-mode pooler the session that ran LISTEN is lent to others and the
/// notification never comes back; that session keeps listening, which is why the check
/// uses a channel nobody notifies again (on [`CHANNEL`] the pooler would be handed every
/// wake-up by a session no client holds). Heard: the connection switches to [`CHANNEL`].
/// Not heard: one warning, and the signal says it is polling.
pub(crate) async fn open(store: &PgStore, spec: &ConnSpec) -> Result<Listening, PgError> {
    let mut conn = spec.establish().await?;
    let probe = format!(
        "pgqueue_probe_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    conn.batch_execute(&format!("LISTEN {probe}")).await?;
    let heard = {
        let mut stream = std::pin::pin!(conn.notifications_stream());
        let send = store.with_conn(async |c| notify_on(c, &probe, "probe").await);
        let wait = async {
            loop {
                match stream.next().await {
                    Some(Ok(n)) if n.channel == probe => return true,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return false,
                }
            }
        };
        let (sent, heard) = tokio::join!(send, tokio::time::timeout(ROUND_TRIP, wait));
        sent?;
        heard.unwrap_or(false)
    };
    let signal = store.signal();
    if heard {
        conn.batch_execute(&format!("LISTEN {CHANNEL}; UNLISTEN {probe}"))
            .await?;
        signal.set_polling(false);
        Ok(Listening::Notify(Box::new(conn)))
    } else {
        tracing::warn!(
            listen = %spec.target,
            poll_every = ?POLL,
            "LISTEN received no NOTIFY within 1s (is this connection behind a transaction-mode \
             pooler? give --pg.listen-url a direct one): wake-ups fall back to polling"
        );
        signal.set_polling(true);
        Ok(Listening::Poll)
    }
}

/// Relays notifications (or, when polling, wakes everyone every [`POLL`]) until `stop`
/// fires (or its sender, the store, is dropped). Polling, it hears no `floor:`: another
/// process's retry then waits until the floors are forgotten anyway (a minute at most).
pub(crate) async fn run(
    spec: ConnSpec,
    listening: Listening,
    signal: Signal,
    floors: Arc<Floors>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = match listening {
        Listening::Notify(conn) => *conn,
        Listening::Poll => loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(POLL) => signal.send(Wakeup::Resync),
            }
        },
    };
    loop {
        {
            let mut stream = std::pin::pin!(conn.notifications_stream());
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    item = stream.next() => match item {
                        Some(Ok(n)) => match parse(&n.payload) {
                            Some(Heard::Wake(w)) => signal.send(w),
                            Some(Heard::BelowFloors(ns, queue)) => floors.forget(&ns, &queue),
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
    notify_on(conn, CHANNEL, payload).await
}

async fn notify_on(
    conn: &mut AsyncPgConnection,
    channel: &str,
    payload: &str,
) -> Result<(), PgError> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<diesel::sql_types::Text, _>(channel)
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
        let emails = QueueName::parse("emails").unwrap();
        assert_eq!(
            parse("task:default:emails"),
            Some(Heard::Wake(Wakeup::Task {
                namespace: Namespace::default(),
                queue: emails.clone()
            }))
        );
        assert_eq!(
            parse("ticker:pgqueue"),
            Some(Heard::Wake(Wakeup::Ticker {
                namespace: Namespace::system()
            }))
        );
        assert_eq!(
            parse("floor:default:emails"),
            Some(Heard::BelowFloors(Namespace::default(), emails))
        );
        assert_eq!(parse("floor:default"), None);
        assert_eq!(parse("task:default"), None);
        assert_eq!(parse("other"), None);
    }
}
