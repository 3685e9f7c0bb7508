//! The ticker stream (`docs/tickers.md`): matured tickers as server-sent events.
//!
//! A producer task claims tickers with [`Manager::wait_for_ticker`] and hands frames to the
//! response body through a channel of one. It stops as soon as the client goes (the body,
//! and with it the receiver, is dropped: `closed()` fires, and the pending claim is dropped
//! between claims, which loses no maturity) or the server shuts down (the shutdown watch),
//! so neither a leaked task nor a graceful shutdown waiting forever can happen. The channel
//! of one keeps the producer from claiming tickers nobody will read.

use pgqueue_app::Manager;
use pgqueue_domain::Ticker;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use warp::reply::{Reply, Response};

/// The longest a stream stays silent: a `ping` follows every 10 s without another event.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(10);
/// How long to wait before claiming again after a storage failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The frame announcing a claimed ticker: `event: ticker` and its compact JSON.
pub(crate) fn ticker_frame(ticker: &Ticker) -> String {
    let data = serde_json::to_string(ticker).unwrap_or_else(|_| "{}".to_string());
    format!("event: ticker\ndata: {data}\n\n")
}

/// The keep-alive frame. It carries an empty `data:` line: SSE clients (browsers,
/// eventsource-stream) silently drop an event without any data line, and a ping nobody sees
/// cannot tell a client that its subscription is live.
pub(crate) const PING_FRAME: &str = "event: ping\ndata:\n\n";

/// Resolves once shutdown has been signalled; never if the signal's sender is gone.
pub(crate) async fn shutdown_signalled(mut shutdown: watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Where a stream's producer sends its frames.
pub(crate) type Frames = mpsc::Sender<Result<String, Infallible>>;

/// An event-stream response fed by the producer that gets the returned sender: a channel of
/// one, so the producer never runs ahead of the client.
pub(crate) fn channel() -> (Frames, Response) {
    let (tx, rx) = mpsc::channel::<Result<String, Infallible>>(1);
    let mut res = warp::reply::stream(ReceiverStream::new(rx)).into_response();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (tx, res)
}

/// Starts a ticker stream for `manager` and returns its response.
pub(crate) fn stream(manager: Manager, shutdown: watch::Receiver<bool>) -> Response {
    let (tx, res) = channel();
    tokio::spawn(produce(manager, tx, shutdown));
    res
}

async fn produce(manager: Manager, tx: Frames, shutdown: watch::Receiver<bool>) {
    let stop = shutdown_signalled(shutdown);
    tokio::pin!(stop);
    if tx.send(Ok(PING_FRAME.to_string())).await.is_err() {
        return;
    }
    let mut ping_at = Instant::now() + PING_EVERY;
    let mut claim = Box::pin(manager.wait_for_ticker());
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            _ = tx.closed() => return,
            claimed = &mut claim => {
                match claimed {
                    Ok(ticker) => {
                        if tx.send(Ok(ticker_frame(&ticker))).await.is_err() {
                            tracing::warn!(ticker = %ticker.name.as_str(), "client left before a claimed ticker was delivered");
                            return;
                        }
                        ping_at = Instant::now() + PING_EVERY;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a ticker for a stream failed");
                        tokio::select! {
                            _ = &mut stop => return,
                            _ = tx.closed() => return,
                            _ = sleep(RETRY_AFTER_FAILURE) => {}
                        }
                    }
                }
                claim = Box::pin(manager.wait_for_ticker());
            }
            _ = sleep_until(ping_at) => {
                if tx.send(Ok(PING_FRAME.to_string())).await.is_err() {
                    return;
                }
                ping_at = Instant::now() + PING_EVERY;
            }
        }
    }
}
