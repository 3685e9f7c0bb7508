//! The handlers, one module per resource, and the dispatch from endpoint to handler.
//!
//! A handler parses what its route takes (body, query), calls one Manager method and shapes
//! the answer; it never decides a status for an error (that is [`crate::error`]'s job).

mod events;
mod namespaces;
mod operate;
mod queues;
mod system;
mod tasks;
mod tickers;

use crate::body::{self, BodyStream};
use crate::error::HttpError;
use crate::query::Query;
use crate::router::Endpoint;
use crate::server::State;
use bytes::Bytes;
use pgqueue_app::Manager;
use serde::de::DeserializeOwned;
use warp::http::HeaderMap;
use warp::reply::Response;

/// One request as the handlers see it.
pub(crate) struct Request {
    /// Decoded query pairs.
    pub query: Query,
    /// Request headers (content type, accept, length).
    pub headers: HeaderMap,
    /// The body, read only by the endpoints that take one.
    pub body: BodyStream,
    /// The configured body limit.
    pub body_limit: u64,
    /// The configured body timeout.
    pub body_timeout: std::time::Duration,
}

impl Request {
    /// The raw body, checked for content type and size.
    async fn bytes(self) -> Result<Bytes, HttpError> {
        body::read(&self.headers, self.body, self.body_limit, self.body_timeout).await
    }

    /// The body as a JSON object; required.
    async fn json<T: DeserializeOwned>(self) -> Result<T, HttpError> {
        body::parse_object(&self.bytes().await?)
    }

    /// Whether the client asked for an event stream.
    fn wants_event_stream(&self) -> bool {
        self.headers
            .get_all(warp::http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("text/event-stream"))
    }
}

/// Resolves when the server starts shutting down: long-polling retains answer then.
fn stopping(state: &State) -> impl std::future::Future<Output = ()> + Send + 'static {
    crate::sse::shutdown_signalled(state.shutdown.clone())
}

/// Runs the endpoint's handler.
pub(crate) async fn dispatch(
    state: &State,
    m: &Manager,
    endpoint: Endpoint,
    req: Request,
) -> Result<Response, HttpError> {
    match endpoint {
        Endpoint::ListNamespaces => namespaces::list(m).await,
        Endpoint::ListQueues => queues::list(m, &req.query).await,
        Endpoint::CreateQueue => queues::create(m, req.json().await?).await,
        Endpoint::GetQueue(name) => queues::get(m, &name).await,
        Endpoint::UpdateQueue(name) => queues::update(m, &name, req.json().await?).await,
        Endpoint::DeleteQueue(name) => queues::delete(m, &name).await,
        Endpoint::ListTasks => tasks::list(m, &req.query).await,
        Endpoint::CreateTasks => tasks::create(m, &req.bytes().await?).await,
        Endpoint::RetainAny => tasks::retain_any(m, &req.query, stopping(state)).await,
        Endpoint::GetTask(id) => tasks::get(m, id).await,
        Endpoint::RetainFrom(queue) => {
            tasks::retain_from(m, &queue, &req.query, stopping(state)).await
        }
        Endpoint::ReleaseTask(id) => tasks::release(m, id, &req.bytes().await?).await,
        Endpoint::ReleaseTasks => tasks::release_many(m, &req.bytes().await?).await,
        Endpoint::Heartbeat(id) => tasks::heartbeat(m, id, &req.query).await,
        Endpoint::PurgeTasks => operate::purge(m, &req.query).await,
        Endpoint::DeleteTask(id) => operate::delete(m, id).await,
        Endpoint::CancelTask(id) => operate::cancel(m, id).await,
        Endpoint::RetryTask(id) => operate::retry(m, id).await,
        Endpoint::RetryTasks(queue) => operate::redrive(m, &queue, &req.query).await,
        Endpoint::PauseQueue(name) => operate::pause_queue(m, &name, true).await,
        Endpoint::ResumeQueue(name) => operate::pause_queue(m, &name, false).await,
        Endpoint::TickerSchedule(name) => tickers::schedule(m, &name, &req.query).await,
        Endpoint::PauseTicker(name) => operate::pause_ticker(m, &name, true).await,
        Endpoint::ResumeTicker(name) => operate::pause_ticker(m, &name, false).await,
        Endpoint::ListTickers if req.wants_event_stream() => Ok(tickers::stream(state, m)),
        Endpoint::ListTickers => tickers::list(m, &req.query).await,
        Endpoint::CreateTicker => tickers::create(m, req.json().await?).await,
        Endpoint::NextTicker => Ok(tickers::stream(state, m)),
        Endpoint::GetTicker(name) => tickers::get(m, &name).await,
        Endpoint::UpdateTicker(name) => tickers::update(m, &name, req.json().await?).await,
        Endpoint::DeleteTicker(name) => tickers::delete(m, &name).await,
        Endpoint::Events => events::stream(state, m, &req),
        Endpoint::Metrics => system::metrics(state, m).await,
        Endpoint::OpenApi => Ok(system::openapi(&state.prefix)),
    }
}
