//! What operators do over HTTP: cancel, retry and redrive, delete and purge, pause and
//! resume (`docs/http-api.md`, "Operating").

use crate::envelope;
use crate::error::HttpError;
use crate::query::Query;
use pgqueue_app::Manager;
use pgqueue_domain::{Status, TaskId};
use warp::http::StatusCode;
use warp::reply::Response;

fn count(n: u64) -> Response {
    envelope::json(StatusCode::OK, &serde_json::json!({ "count": n }))
}

/// Every `?status=` given (repeatable, or comma-separated), parsed.
fn statuses(q: &Query) -> Result<Vec<Status>, HttpError> {
    Ok(q.all("status")
        .into_iter()
        .map(Status::parse)
        .collect::<Result<_, _>>()?)
}

/// `POST P/task/{id}/cancel`.
pub(crate) async fn cancel(m: &Manager, id: TaskId) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.cancel_task(id).await?))
}

/// `POST P/task/{id}/retry`.
pub(crate) async fn retry(m: &Manager, id: TaskId) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.retry_task(id).await?))
}

/// `POST P/queue/{name}/retry?status=…&limit=…`: redrive, `{"count":N}`.
pub(crate) async fn redrive(m: &Manager, queue: &str, q: &Query) -> Result<Response, HttpError> {
    let limit = q
        .number("limit")?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(count(m.retry_tasks(queue, &statuses(q)?, limit).await?))
}

/// `DELETE P/task/{id}`: the deleted task.
pub(crate) async fn delete(m: &Manager, id: TaskId) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.delete_task(id).await?))
}

/// `DELETE P/task?status=…[&queue=…]`: purge, `{"count":N}`.
pub(crate) async fn purge(m: &Manager, q: &Query) -> Result<Response, HttpError> {
    let queue = q.one("queue")?;
    Ok(count(m.purge_tasks(queue, &statuses(q)?).await?))
}

/// `POST P/queue/{name}/pause` and `/resume`.
pub(crate) async fn pause_queue(
    m: &Manager,
    name: &str,
    paused: bool,
) -> Result<Response, HttpError> {
    let queue = if paused {
        m.pause_queue(name).await?
    } else {
        m.resume_queue(name).await?
    };
    Ok(envelope::json(StatusCode::OK, &queue))
}

/// `POST P/ticker/{name}/pause` and `/resume`.
pub(crate) async fn pause_ticker(
    m: &Manager,
    name: &str,
    paused: bool,
) -> Result<Response, HttpError> {
    let ticker = if paused {
        m.pause_ticker(name).await?
    } else {
        m.resume_ticker(name).await?
    };
    Ok(envelope::json(StatusCode::OK, &ticker))
}
