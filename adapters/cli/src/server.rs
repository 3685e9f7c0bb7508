//! `pgqueue run`: the composition root. Wires a storage adapter, the Manager, the HTTP API and
//! the background runtime together, and stops them gracefully on SIGINT/SIGTERM.

use crate::cli::RunArgs;
use crate::error::CliError;
use pgqueue_app::auth::Authenticator;
use pgqueue_app::{Manager, Runtime, RuntimeConfig};
use pgqueue_http::{HttpConfig, Metrics, serve};
use pgqueue_memory::MemoryStore;
use pgqueue_ports::{Store, TokenStore};
use pgqueue_postgres::{PgOptions, PgStore};
use std::sync::Arc;
use tokio::sync::watch;

/// `:8080` means `localhost:8080`; a `http://` or `https://` in front is the client's
/// business (see [`scheme`]) and is dropped here.
pub fn normalise_addr(addr: &str) -> String {
    let addr = addr.trim();
    let addr = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr)
        .trim_end_matches('/');
    if addr.starts_with(':') {
        format!("localhost{addr}")
    } else {
        addr.to_string()
    }
}

/// The scheme a client speaks to `--http.addr`: `https` when it says so, else `http`.
pub fn scheme(addr: &str) -> &'static str {
    if addr.trim().starts_with("https://") {
        "https"
    } else {
        "http"
    }
}

/// Puts `--pg.user` / `--pg.password` into the URL, so they win over the URL's own.
pub fn with_credentials(
    raw: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Result<String, CliError> {
    if user.is_none() && password.is_none() {
        return Ok(raw.to_string());
    }
    let mut url =
        url::Url::parse(raw).map_err(|e| CliError::Usage(format!("invalid database URL: {e}")))?;
    if let Some(u) = user {
        url.set_username(u)
            .map_err(|_| CliError::Usage("database URL cannot carry a user".into()))?;
    }
    if let Some(p) = password {
        url.set_password(Some(p))
            .map_err(|_| CliError::Usage("database URL cannot carry a password".into()))?;
    }
    Ok(url.to_string())
}

/// Resolves when the process gets SIGINT or SIGTERM.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(args: RunArgs, addr: &str, prefix: &str, namespace: &str) -> Result<(), CliError> {
    let (store, tokens, storage): (Arc<dyn Store>, Option<Arc<dyn TokenStore>>, String) = match args
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        None => {
            tracing::warn!(
                "no database URL given: using the in-memory store; nothing survives a restart (pass a postgres:// URL or set DATABASE_URL to persist)"
            );
            (Arc::new(MemoryStore::default()), None, "memory".into())
        }
        Some(raw) => {
            let url = with_credentials(raw, args.pg_user.as_deref(), args.pg_password.as_deref())?;
            let listen_url = match args
                .pg_listen_url
                .as_deref()
                .filter(|u| !u.trim().is_empty())
            {
                Some(u) => Some(with_credentials(
                    u,
                    args.pg_user.as_deref(),
                    args.pg_password.as_deref(),
                )?),
                None => None,
            };
            let options = PgOptions {
                pool_size: args.pool_size.max(1),
                schema: args.pg_schema.clone(),
                migrate: !args.no_migrate,
                prepared: args.pg_prepared,
                listen_url,
                ..Default::default()
            };
            let store = Arc::new(PgStore::connect(&url, options).await?);
            let desc = format!("postgres ({})", redact(&url));
            (store.clone(), Some(store), desc)
        }
    };
    let metrics = Metrics::new()?;
    let manager = Manager::new(store)
        .with_namespace(namespace)?
        .with_observer(metrics.observer());
    let addr = normalise_addr(addr);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        std::fs::write(path, bound.to_string())?;
    }
    tracing::info!(addr = %bound, prefix, namespace = %manager.namespace(), storage = %storage, auth = args.auth, "pgqueue serving");
    if !args.auth && !bound.ip().is_loopback() {
        tracing::warn!(
            addr = %bound,
            "serving without --auth on a non-loopback address: anyone who can reach it can read and change every task (see docs/security.md)"
        );
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(pgqueue_http::tls_config(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--http.tls-cert and --http.tls-key go together".into(),
            ));
        }
    };
    let auth = match (args.auth, tokens) {
        (false, _) => None,
        (true, Some(tokens)) => Some(Authenticator::new(tokens)),
        (true, None) => {
            return Err(CliError::Usage(
                "--auth needs a database URL: tokens live in PostgreSQL (pgqueue token create URL …)"
                    .into(),
            ));
        }
    };

    let (stop, stopped) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let config = HttpConfig {
        prefix: prefix.to_string(),
        body_limit: args.body_limit,
        metrics: Some(metrics),
        header_timeout: positive(args.header_timeout),
        body_timeout: positive(args.body_timeout),
        shutdown_timeout: args.shutdown_timeout.to_std(),
        ui: args.http_ui,
        auth,
        cors_origins: args.cors_origins.clone(),
        tls,
        ..Default::default()
    };
    let http = tokio::spawn(serve(
        listener,
        manager.clone(),
        config,
        wait(stopped.clone()),
    ));
    let runtime_config = RuntimeConfig {
        cleanup_period: args
            .cleanup_period
            .to_std()
            .max(std::time::Duration::from_millis(1)),
        events_retention: args.events_retention.to_std(),
        ..Default::default()
    };
    let background = tokio::spawn(Runtime::new(manager.clone(), runtime_config).run(wait(stopped)));
    termination().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = http.await;
    let _ = background.await;
    tracing::info!("stopped");
    Ok(())
}

/// A flag's duration for a timer that must not be zero (hyper refuses a zero timeout).
fn positive(d: pgqueue_domain::Duration) -> std::time::Duration {
    d.to_std().max(std::time::Duration::from_millis(1))
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "invalid URL".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_means_localhost() {
        assert_eq!(normalise_addr(":8080"), "localhost:8080");
        assert_eq!(normalise_addr("0.0.0.0:1"), "0.0.0.0:1");
    }

    #[test]
    fn credentials_flags_override_the_url() {
        let url = with_credentials("postgres://a:b@h:5432/db", Some("u"), Some("p w")).unwrap();
        assert_eq!(url, "postgres://u:p%20w@h:5432/db");
        assert_eq!(
            with_credentials("postgres://h/db", None, None).unwrap(),
            "postgres://h/db"
        );
        assert!(with_credentials("not a url", Some("u"), None).is_err());
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
