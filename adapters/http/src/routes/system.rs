//! `GET P/metrics` and `GET P/openapi.json`: what operators and tools read about the server.

use crate::error::HttpError;
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::server::State;
use pgqueue_app::Manager;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::Response;

/// The Prometheus text exposition, with `queue_tasks` counted now.
pub(crate) async fn metrics(state: &State, m: &Manager) -> Result<Response, HttpError> {
    let metrics = state
        .metrics
        .as_ref()
        .ok_or_else(|| HttpError::Unavailable("metrics are not available".into()))?;
    let text = metrics.render(m).await?;
    let mut res = Response::new(text.into());
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    Ok(res)
}

/// The OpenAPI document with its server URL set to this server's prefix.
pub(crate) fn openapi(prefix: &str) -> Response {
    let mut res = Response::new(crate::openapi::document(prefix).to_string().into());
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}
