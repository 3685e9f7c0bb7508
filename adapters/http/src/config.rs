//! What an operator can choose about the HTTP API: where it lives and how much it accepts.

use crate::metrics::Metrics;
use pgqueue_app::auth::Authenticator;
use std::time::Duration;

/// The path prefix every route lives under unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "/api";
/// The largest request body accepted unless configured otherwise: 1 MiB.
pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;
/// How long a request may take to deliver its headers unless configured otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request may take to deliver its body unless configured otherwise.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a shutdown waits for requests in flight unless configured otherwise.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of the REST API.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Path prefix of every route (`/api`): lets pgqueue share a host with other services.
    /// A missing leading slash is added and a trailing one dropped; empty means the root.
    pub prefix: String,
    /// Largest request body in bytes; a larger one is refused with 413 before it is parsed,
    /// so one client cannot make the server buffer arbitrary amounts of memory.
    pub body_limit: u64,
    /// The metrics to feed and expose. `None` creates a fresh set per server; pass one to
    /// share it with other parts of the process (e.g. a worker runtime's manager).
    pub metrics: Option<Metrics>,
    /// Coalesce concurrent single-task retains and releases into one statement each
    /// ([`pgqueue_app::Manager::with_group_commit`]): each request keeps its own answer, and
    /// many workers polling one server cost the database a fraction of the statements.
    /// Default on.
    pub group_commit: bool,
    /// How long a request may take to deliver its headers before its connection is closed
    /// (a slow client holds a connection for at most this long). Default 10 s.
    pub header_timeout: Duration,
    /// How long a request may take to deliver its body before it is answered 408.
    /// Default 30 s.
    pub body_timeout: Duration,
    /// How long [`crate::serve`] waits, once shut down, for requests in flight before it
    /// closes the connections still open and returns. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Serve the web dashboard at `/` (outside the prefix). Default on.
    pub ui: bool,
    /// Require a bearer token on every route (`--auth`, `docs/security.md`): `None` trusts
    /// every caller. The dashboard's files and the health checks stay open.
    pub auth: Option<Authenticator>,
    /// Origins whose browsers may call the API (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Serve HTTPS with this certificate ([`crate::tls_config`]); `None`: plain HTTP.
    pub tls: Option<crate::TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_string(),
            body_limit: DEFAULT_BODY_LIMIT,
            metrics: None,
            group_commit: true,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            ui: true,
            auth: None,
            cors_origins: Vec::new(),
            tls: None,
        }
    }
}

impl HttpConfig {
    /// The prefix as routing compares it: `""` or `/segment[/segment…]`, no trailing slash.
    pub(crate) fn normalized_prefix(&self) -> String {
        let trimmed = self.prefix.trim().trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        let with = |p: &str| HttpConfig {
            prefix: p.into(),
            ..Default::default()
        };
        assert_eq!(HttpConfig::default().normalized_prefix(), "/api");
        assert_eq!(with("api/").normalized_prefix(), "/api");
        assert_eq!(with("/v1/queue/").normalized_prefix(), "/v1/queue");
        assert_eq!(with("").normalized_prefix(), "");
        assert_eq!(with("/").normalized_prefix(), "");
    }
}
