//! The client's one error type: the server said no, or the server could not be reached.

use serde_json::Value;

/// Why a client call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is empty, unparsable, or not an http(s) URL that paths can extend.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with a non-2xx status; `reason` is the envelope's (or the body
    /// text when the answer was not an envelope, e.g. from a proxy).
    #[error("{status}: {reason}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's explanation.
        reason: String,
        /// The envelope's structured detail, when it had one.
        detail: Option<Value>,
    },
    /// The request did not complete: connection refused, reset, timed out, …
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// A 2xx answer whose body is not what the route promises.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// The event stream broke (transport or invalid UTF-8).
    #[error("event stream error: {0}")]
    Stream(String),
}

impl ClientError {
    /// The HTTP status of an API error; `None` for transport and decoding problems.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
