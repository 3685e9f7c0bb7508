//! The one error type of the HTTP adapter, and the one place statuses are decided.
//!
//! Application errors keep their kind (`app::Error`) until here; wire-level problems (bad
//! JSON, bad query, unknown route) are added beside them. [`HttpError::status`] maps every
//! kind to its HTTP status, so the envelope, the metrics and the tests agree.

use pgqueue_app::Error as AppError;
use pgqueue_domain::Error as DomainError;
use serde_json::Value;
use warp::http::StatusCode;

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The application refused or failed the call.
    #[error(transparent)]
    App(#[from] AppError),
    /// The request itself is malformed: body, query, content type or a path segment.
    #[error("{reason}")]
    BadRequest {
        /// What is wrong, for humans.
        reason: String,
        /// Where it is wrong (e.g. JSON line and column), when known.
        detail: Option<Value>,
    },
    /// No route has this path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The path exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method the client used.
        method: String,
        /// The path it used it on.
        path: String,
        /// The methods the path accepts (sent as `Allow` and in the envelope's detail).
        allow: Vec<&'static str>,
    },
    /// The body is larger than the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request target is longer than the server answers.
    #[error("request target is longer than the limit of {limit} bytes")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's headers are larger than the server answers.
    #[error("request headers are larger than the limit of {limit} bytes")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Something the server depends on is not working (metrics registry).
    #[error("{0}")]
    Unavailable(String),
    /// The request carries no valid token (missing, unknown, expired or revoked).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The token lacks a scope or namespace the request needs, or a browser's origin is not
    /// allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A Prometheus registry or encoder failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl From<DomainError> for HttpError {
    fn from(e: DomainError) -> Self {
        HttpError::App(e.into())
    }
}

impl warp::reject::Reject for HttpError {}

impl HttpError {
    /// A malformed request, without detail.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        HttpError::BadRequest {
            reason: reason.into(),
            detail: None,
        }
    }

    /// The status this error is answered with. Storage failures are 503: the request was
    /// fine and may succeed when retried, which is what a 503 tells clients and proxies.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::App(AppError::NotFound(_)) => StatusCode::NOT_FOUND,
            HttpError::App(AppError::Conflict(_) | AppError::Cancelled) => StatusCode::CONFLICT,
            HttpError::App(AppError::Invalid(_)) => StatusCode::BAD_REQUEST,
            HttpError::App(AppError::Storage(_)) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            HttpError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            HttpError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HttpError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Metrics(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// Machine-readable context for the envelope's `detail`, when there is any.
    pub fn detail(&self) -> Option<Value> {
        match self {
            HttpError::BadRequest { detail, .. } => detail.clone(),
            HttpError::MethodNotAllowed { allow, .. } => {
                Some(serde_json::json!({ "allow": allow }))
            }
            HttpError::PayloadTooLarge { limit } => Some(serde_json::json!({ "limit": limit })),
            HttpError::UriTooLong { limit } | HttpError::HeadersTooLarge { limit } => {
                Some(serde_json::json!({ "limit": limit }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_errors_map_to_their_statuses() {
        let status = |e: AppError| HttpError::from(e).status().as_u16();
        assert_eq!(status(AppError::NotFound("x".into())), 404);
        assert_eq!(status(AppError::Conflict("x".into())), 409);
        assert_eq!(status(AppError::Invalid(DomainError::MissingPayload)), 400);
        assert_eq!(status(AppError::Storage("down".into())), 503);
        assert_eq!(
            HttpError::from(DomainError::NotRetained).status(),
            StatusCode::CONFLICT
        );
    }
}
