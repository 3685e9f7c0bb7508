//! `P/ticker` routes: CRUD, list, and the SSE stream of matured tickers.

use crate::envelope;
use crate::error::HttpError;
use crate::query::Query;
use crate::server::State;
use crate::sse;
use pgqueue_app::Manager;
use pgqueue_domain::TickerMeta;
use warp::http::StatusCode;
use warp::reply::Response;

/// `GET P/ticker?offset&limit`: tickers ordered by name.
pub(crate) async fn list(m: &Manager, q: &Query) -> Result<Response, HttpError> {
    Ok(envelope::list(m.list_tickers(q.page()?).await?))
}

/// `GET P/ticker/next`, or `GET P/ticker` with `Accept: text/event-stream`.
pub(crate) fn stream(state: &State, m: &Manager) -> Response {
    sse::stream(m.clone(), state.shutdown.clone())
}

/// `POST P/ticker`: 201 with the new ticker; 409 if it exists.
pub(crate) async fn create(m: &Manager, meta: TickerMeta) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::CREATED,
        &m.create_ticker(meta).await?,
    ))
}

/// `GET P/ticker/{name}`.
pub(crate) async fn get(m: &Manager, name: &str) -> Result<Response, HttpError> {
    Ok(envelope::json(StatusCode::OK, &m.get_ticker(name).await?))
}

/// `PATCH P/ticker/{name}`: only the given fields; `ticker` renames.
pub(crate) async fn update(
    m: &Manager,
    name: &str,
    meta: TickerMeta,
) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::OK,
        &m.update_ticker(name, meta).await?,
    ))
}

/// `GET P/ticker/{name}/schedule?n&from`: its next `n` maturities strictly after `from`, as
/// `{"count":n,"body":[timestamps]}`.
pub(crate) async fn schedule(m: &Manager, name: &str, q: &Query) -> Result<Response, HttpError> {
    let from = q
        .one("from")?
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc())
                .map_err(|e| {
                    HttpError::bad_request(format!(
                        "invalid from {v:?}: expected an RFC 3339 timestamp ({e})"
                    ))
                })
        })
        .transpose()?;
    let times = m.ticker_schedule(name, q.number("n")?, from).await?;
    Ok(envelope::list(pgqueue_app::ports::Listing {
        count: times.len() as u64,
        items: times,
    }))
}

/// `DELETE P/ticker/{name}`: 200 with the deleted ticker.
pub(crate) async fn delete(m: &Manager, name: &str) -> Result<Response, HttpError> {
    Ok(envelope::json(
        StatusCode::OK,
        &m.delete_ticker(name).await?,
    ))
}
