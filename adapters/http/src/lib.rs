//! pgqueue's REST API on warp.
//!
//! [`routes()`] is the whole API as one warp filter; [`serve`] runs it on a listener the caller
//! bound (port 0 in tests) until a shutdown future resolves, ending open SSE streams so the
//! graceful shutdown does not wait for them forever.
//!
//! Routing is deliberately table-driven (module `router`): warp's own path filters cannot tell
//! "unknown route" (404) from "known path, other method" (405) reliably once many routes are
//! combined, and a path id that fails to parse would be a silent 404. Here one function
//! resolves `method + path` to an endpoint, a 404, a 405 or a 400 naming the bad segment, and
//! the same resolution gives the route *pattern* that labels the HTTP metrics.
//!
//! Architecture invariant: no rule of the queue lives here. Handlers parse the wire, call one
//! [`pgqueue_app::Manager`] method and shape its answer; every error becomes the
//! envelope in module `envelope`, with its status decided once in [`HttpError::status`].

mod access;
mod body;
mod config;
mod cors;
mod envelope;
mod error;
mod event_stream;
mod health;
mod limits;
mod metrics;
mod openapi;
mod query;
mod rejection;
mod router;
mod routes;
mod server;
mod sse;
mod tenants;
mod tls;
mod ui;

pub use config::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_PREFIX,
    DEFAULT_SHUTDOWN_TIMEOUT, HttpConfig,
};
pub use error::HttpError;
pub use metrics::Metrics;
pub use server::{routes, serve};
pub use tls::{TlsConfig, tls_config};

#[cfg(test)]
mod tests;
