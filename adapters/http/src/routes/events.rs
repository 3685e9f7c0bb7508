//! `GET P/events`: the event stream, after checking its filters and `Last-Event-ID` so that
//! a bad request is a 400 envelope, never a stream that ends at once.

use super::Request;
use crate::error::HttpError;
use crate::server::State;
use pgqueue_app::Manager;
use pgqueue_domain::EventId;
use warp::reply::Response;

/// The header a reconnecting client sends (browsers' `EventSource` does it by itself).
const LAST_EVENT_ID: &str = "last-event-id";

pub(crate) fn stream(state: &State, m: &Manager, req: &Request) -> Result<Response, HttpError> {
    let filter = m.event_filter(&req.query.all("queue"), &req.query.all("event"))?;
    let last = last_event_id(req)?;
    Ok(crate::event_stream::stream(
        m.clone(),
        last,
        filter,
        state.shutdown.clone(),
    ))
}

/// The id a client last saw, if it says: a non-negative integer.
fn last_event_id(req: &Request) -> Result<Option<EventId>, HttpError> {
    let Some(value) = req.headers.get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    let Ok(text) = value.to_str().map(str::trim) else {
        return Err(HttpError::bad_request(
            "invalid Last-Event-ID: expected an event id (a non-negative integer)",
        ));
    };
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<EventId>().map(Some).map_err(|_| {
        HttpError::bad_request(format!(
            "invalid Last-Event-ID {text:?}: expected an event id (a non-negative integer)"
        ))
    })
}
