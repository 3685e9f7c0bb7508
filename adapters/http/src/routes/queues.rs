//! `P/queue` routes: create, read, update, delete and list queues.

use crate::envelope;
use crate::error::HttpError;
use crate::query::Query;
use pgqueue_app::Manager;
use pgqueue_domain::QueueMeta;
use warp::http::StatusCode;
use warp::reply::Response;

/// `GET P/queue?offset&limit`: queues ordered by name.
pub(crate) async fn list(m: &Manager, q: &Query) -> Result<Response, HttpError> {
    Ok(envelope::list(m.list_queues(q.page()?).await?))
}

/// `POST P/queue`: 201 with the new queue; 409 if it exists.
pub(crate) async fn create(m: &Manager, meta: QueueMeta) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::CREATED,
        &m.create_queue(meta).await?,
    ))
}

/// `GET P/queue/{name}`.
pub(crate) async fn get(m: &Manager, name: &str) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.get_queue(name).await?))
}

/// `PATCH P/queue/{name}`: only the given fields; `queue` renames.
pub(crate) async fn update(
    m: &Manager,
    name: &str,
    meta: QueueMeta,
) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::OK,
        &m.update_queue(name, meta).await?,
    ))
}

/// `DELETE P/queue/{name}`: 200 with the deleted queue.
pub(crate) async fn delete(m: &Manager, name: &str) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.delete_queue(name).await?))
}
