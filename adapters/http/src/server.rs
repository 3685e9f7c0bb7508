//! The filter that is the whole API, and the server entry point tests drive on port 0.

use crate::body::BodyStream;
use crate::config::HttpConfig;
use crate::cors::Cors;
use crate::envelope;
use crate::error::HttpError;
use crate::metrics::Metrics;
use crate::query::Query;
use crate::rejection;
use crate::router::{self, Verb};
use crate::routes::{self, Request};
use crate::tenants::Tenants;
use bytes::{Buf, Bytes};
use futures::{StreamExt, TryStreamExt};
use pgqueue_app::Manager;
use pgqueue_app::auth::Authenticator;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinSet;
use warp::Filter;
use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::reply::Response;

/// What every request shares.
pub(crate) struct State {
    /// The namespace-bound cores, reporting to the metrics: the server's, and those of the
    /// namespaces requests name (`P/ns/{namespace}/…`).
    pub tenants: Tenants,
    /// The normalised prefix.
    pub prefix: String,
    /// Largest accepted body.
    pub body_limit: u64,
    /// Longest wait for a request body.
    pub body_timeout: std::time::Duration,
    /// The metrics fed and exposed; `None` only if they could not be built.
    pub metrics: Option<Metrics>,
    /// Flips to `true` when the server shuts down: ends SSE streams.
    pub shutdown: watch::Receiver<bool>,
    /// Serve the dashboard's files at `/`.
    pub ui: bool,
    /// Token checks, with `--auth`.
    pub auth: Option<Authenticator>,
    /// The origins browsers may call from.
    pub cors: Cors,
}

/// The whole REST API as one filter, for embedding in another warp server or for
/// `warp::test`. SSE streams of this filter end only when their client leaves; use
/// [`serve`] for a server whose streams also end on shutdown. The manager is rebound to
/// report to the configured (or a fresh) [`Metrics`], replacing any observer it had.
pub fn routes(
    manager: Manager,
    config: HttpConfig,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // Nobody will ever signal this shutdown; `sse::shutdown_signalled` treats the dropped
    // sender as "never".
    let (_, never) = watch::channel(false);
    build(manager, config, never)
}

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting, ends open
/// SSE streams, lets requests in flight finish and returns within
/// [`HttpConfig::shutdown_timeout`] whatever clients do (connections still open then are
/// closed). Bind the listener yourself (port 0 in tests) so the caller knows the address
/// before the server runs.
///
/// Each connection must deliver a request's headers within [`HttpConfig::header_timeout`]
/// (hyper closes it otherwise) and its body within [`HttpConfig::body_timeout`] (answered
/// 408): a client that trickles bytes cannot hold a connection, or a shutdown, for ever.
pub async fn serve(
    listener: tokio::net::TcpListener,
    manager: Manager,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = watch::channel(false);
    let limits = (config.header_timeout, config.shutdown_timeout);
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let filter = build(manager, config, stopped.clone());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (filter, stopped) = (filter.clone(), stopped.clone());
                    match &tls {
                        None => {
                            connections.spawn(connection(stream, filter, limits.0, stopped));
                        }
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            connections.spawn(async move {
                                // The handshake gets the headers' time limit: a client that
                                // never finishes it cannot hold the connection.
                                match tokio::time::timeout(limits.0, acceptor.accept(stream)).await {
                                    Ok(Ok(tls)) => connection(tls, filter, limits.0, stopped).await,
                                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!("TLS handshake timed out"),
                                }
                            });
                        }
                    }
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Ends SSE streams and asks every connection to close after its request in flight.
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.1, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "shutdown timeout reached; closing the connections still open"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it closes, or until shutdown once its request in flight is
/// answered.
async fn connection<S, F>(
    stream: S,
    filter: F,
    header_timeout: std::time::Duration,
    stopped: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(warp::service(filter));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        // Large enough that pgqueue's own limits (`limits.rs`) answer first, with an envelope.
        .max_buf_size(crate::limits::HYPER_BUFFER)
        .max_headers(crate::limits::HYPER_MAX_HEADERS);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    let stop = crate::sse::shutdown_signalled(stopped);
    tokio::pin!(stop);
    tokio::select! {
        result = conn.as_mut() => log_connection_end(result),
        _ = &mut stop => {
            conn.as_mut().graceful_shutdown();
            log_connection_end(conn.await);
        }
    }
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the client's business, not an alarm.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

pub(crate) fn build(
    manager: Manager,
    config: HttpConfig,
    shutdown: watch::Receiver<bool>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let metrics = match config.metrics.clone() {
        Some(m) => Some(m),
        None => match Metrics::new() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "metrics could not be created; serving without them");
                None
            }
        },
    };
    let manager = match &metrics {
        Some(m) => manager.with_observer(m.observer()),
        None => manager,
    };
    let manager = if config.group_commit {
        manager.with_group_commit()
    } else {
        manager
    };
    let state = Arc::new(State {
        tenants: Tenants::new(manager, config.group_commit),
        prefix: config.normalized_prefix(),
        body_limit: config.body_limit,
        body_timeout: config.body_timeout,
        metrics,
        shutdown,
        ui: config.ui,
        auth: config.auth.clone(),
        cors: Cors::new(&config.cors_origins),
    });
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let body = warp::body::stream().map(boxed_body);
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(body)
        .then(
            move |method: Method, path: FullPath, query: String, headers: HeaderMap, body| {
                let state = state.clone();
                async move { handle(&state, method, path.as_str(), &query, headers, body).await }
            },
        )
        .recover(rejection::recover)
        .unify()
}

/// Resolves, runs and measures one request; every failure becomes an envelope here.
async fn handle(
    state: &State,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: BodyStream,
) -> Response {
    let started = Instant::now();
    if let Some(answer) = crate::health::answer(&method, path, state.tenants.base()).await {
        return answer;
    }
    if state.ui
        && let Some(page) = crate::ui::asset(&method, path, &state.prefix)
    {
        return page;
    }
    if let Some(answer) = state.cors.preflight(&method, &headers) {
        return answer.unwrap_or_else(|e| envelope::error(&e));
    }
    let origin = headers.get(warp::http::header::ORIGIN).cloned();
    let verb = Verb::of(&method);
    let resolved = match crate::limits::check(path, query, &headers) {
        Err(error) => Err(router::Miss {
            pattern: None,
            error,
        }),
        Ok(()) => match router::segments(path, &state.prefix) {
            Some(segments) => {
                let (tenant, segments) = Tenants::split(segments);
                router::resolve(verb, method.as_str(), &segments, path).map(|m| (tenant, m))
            }
            None => Err(router::Miss {
                pattern: None,
                error: HttpError::RouteNotFound(path.to_string()),
            }),
        },
    };
    let (pattern, result) = match resolved {
        Ok((tenant, matched)) => {
            let req = Request {
                query: Query::parse(query),
                headers,
                body,
                body_limit: state.body_limit,
                body_timeout: state.body_timeout,
            };
            (
                matched.pattern,
                serve_endpoint(state, tenant.as_deref(), matched.endpoint, req).await,
            )
        }
        Err(miss) => (miss.pattern.unwrap_or("unmatched"), Err(miss.error)),
    };
    let mut response = result.unwrap_or_else(|e| envelope::error(&e));
    state.cors.decorate(origin.as_ref(), &mut response);
    if let Some(metrics) = &state.metrics {
        metrics.observe_request(
            verb.as_str(),
            pattern,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    response
}

/// Runs one endpoint for the namespace the path names (none: the server's), after checking
/// the request's token when the server requires one.
async fn serve_endpoint(
    state: &State,
    tenant: Option<&str>,
    endpoint: router::Endpoint,
    req: Request,
) -> Result<Response, HttpError> {
    let manager = state.tenants.manager(tenant)?;
    if let Some(auth) = &state.auth {
        crate::access::check(auth, &req.headers, manager.namespace(), &endpoint).await?;
    }
    routes::dispatch(state, &manager, endpoint, req).await
}

/// The request body as a boxed stream of bytes, so handlers can take it by a nameable type.
fn boxed_body<S, B>(stream: S) -> BodyStream
where
    S: futures::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    stream
        .map_ok(|mut buf| -> Bytes { buf.copy_to_bytes(buf.remaining()) })
        .boxed()
}
