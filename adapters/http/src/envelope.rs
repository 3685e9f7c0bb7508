//! The wire envelopes: lists as `{"count","body"}`, errors as `{"object":"error",…}`.
//!
//! Every response body of the API is built here, so the shapes the Go clients rely on are
//! stated once: `body` is omitted from an empty list, `detail` from an error without one, and
//! an error's `code` always equals its HTTP status.

use crate::error::HttpError;
use pgqueue_ports::Listing;
use serde::Serialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use warp::reply::Response;

/// A page of a list with the total before pagination.
#[derive(Debug, Serialize)]
pub(crate) struct ListEnvelope<T> {
    /// How many items match in all.
    pub count: u64,
    /// This page's items; omitted when empty (the Go system did the same).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub body: Vec<T>,
}

impl<T> From<Listing<T>> for ListEnvelope<T> {
    fn from(l: Listing<T>) -> Self {
        Self {
            count: l.count,
            body: l.items,
        }
    }
}

/// The error body every route answers with.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorEnvelope {
    /// Always `"error"`, so clients can tell an error from an object at a glance.
    pub object: &'static str,
    /// The HTTP status again, for clients that only see the body.
    pub code: u16,
    /// What went wrong, for humans.
    pub reason: String,
    /// Structured context, when there is any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// A JSON response with `status`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_json_body(status, bytes),
        Err(e) => {
            // Our wire types always serialize; if one ever does not, say so as an envelope.
            tracing::error!(error = %e, "response did not serialize");
            error(&HttpError::Unavailable(format!(
                "response did not serialize: {e}"
            )))
        }
    }
}

/// A list envelope with status 200.
pub(crate) fn list<T: Serialize>(listing: impl Into<ListEnvelope<T>>) -> Response {
    json(StatusCode::OK, &listing.into())
}

/// The error envelope for `err`, with its status (and `Allow` for a 405).
pub(crate) fn error(err: &HttpError) -> Response {
    let status = err.status();
    if status.is_server_error() {
        tracing::warn!(error = %err, "request failed");
    }
    let envelope = ErrorEnvelope {
        object: "error",
        code: status.as_u16(),
        reason: err.to_string(),
        detail: err.detail(),
    };
    // An envelope of strings and a JSON value cannot fail to serialize.
    let bytes = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
        format!(
            r#"{{"object":"error","code":{},"reason":"unprintable error"}}"#,
            status.as_u16()
        )
        .into_bytes()
    });
    let mut res = with_json_body(status, bytes);
    if let HttpError::MethodNotAllowed { allow, .. } = err
        && let Ok(v) = HeaderValue::from_str(&allow.join(", "))
    {
        res.headers_mut().insert(ALLOW, v);
    }
    res
}

/// An empty response (204 No Content).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut res = Response::new(bytes::Bytes::new().into());
    *res.status_mut() = status;
    res
}

fn with_json_body(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut res = Response::new(bytes.into());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_lists_omit_body_and_errors_omit_missing_detail() {
        let empty: ListEnvelope<u32> = ListEnvelope {
            count: 7,
            body: vec![],
        };
        assert_eq!(serde_json::to_value(&empty).unwrap(), json!({"count":7}));
        let e = ErrorEnvelope {
            object: "error",
            code: 404,
            reason: "x".into(),
            detail: None,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"object":"error","code":404,"reason":"x"})
        );
    }
}
