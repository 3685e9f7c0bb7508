//! The client: one method per route, each building its URL, sending, and decoding.

use crate::error::ClientError;
use crate::types::{
    ErrorWire, ListWire, Listing, Release, ReleaseAnswer, ReleaseItem, SseEvent, TaskQuery,
};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use futures::stream::BoxStream;
use pgqueue_domain::{Created, Queue, QueueMeta, TaskId, TaskMeta, TaskView};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

/// The ticker stream: server-sent events until the server or the caller ends it.
pub type EventStream = BoxStream<'static, Result<SseEvent, ClientError>>;

/// A client of one pgqueue server (one namespace). Cheap to clone: clones share connections.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// Sent as `Authorization: Bearer` on every request (servers run with `--auth`).
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token: debug output ends up in logs.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// One task to create, as `POST P/task` takes it.
#[derive(Serialize)]
struct NewTaskWire<'a> {
    queue: &'a str,
    #[serde(flatten)]
    meta: &'a TaskMeta,
}

mod events;
mod operate;
mod tickers;

impl Client {
    /// A client of the API at `base_url`, prefix included (`http://127.0.0.1:8080/api`).
    /// Refuses an empty, unparsable or non-http(s) URL now rather than at the first call.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = http_builder().build()?;
        Self::with_http_client(base_url, http)
    }

    /// Like [`Client::new`], also trusting the PEM certificate(s) `ca_pem` for HTTPS (a
    /// private CA or a self-signed server), beside the system's roots.
    pub fn with_ca_cert(base_url: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        let mut builder = http_builder();
        for cert in reqwest::Certificate::from_pem_bundle(ca_pem)? {
            builder = builder.add_root_certificate(cert);
        }
        Self::with_http_client(base_url, builder.build()?)
    }

    /// Like [`Client::new`] with a configured reqwest client (timeouts, proxies, TLS). Do not
    /// set a total timeout if you use [`Client::next_ticker`]: the stream is long-lived.
    pub fn with_http_client(base_url: &str, http: reqwest::Client) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = base_url.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty"));
        }
        let base = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("expected an http or https URL"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("expected an absolute URL with a host"));
        }
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    /// This client sending `token` on every request (`docs/security.md`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A client of namespace `ns` on the same server, through its `P/ns/{namespace}/…`
    /// routes; the token, if any, is kept.
    pub fn namespace(&self, ns: &str) -> Result<Self, ClientError> {
        let mut base = self.base.clone();
        base.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: self.base.to_string(),
                reason: "cannot be a base".into(),
            })?
            .pop_if_empty()
            .push("ns")
            .push(ns);
        Ok(Self {
            base,
            ..self.clone()
        })
    }

    /// The base URL every path is appended to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` below the base (each percent-encoded) with `query` pairs.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: self.base.to_string(),
                reason: "cannot be a base".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<RequestBuilder, ClientError> {
        let req = self.http.request(method, self.url(segments, query)?);
        Ok(match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
    }

    /// Sends and decodes a JSON answer.
    async fn call<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let res = check(req.send().await?).await?;
        decode(res).await
    }

    /// Sends a JSON body and decodes a JSON answer.
    async fn call_with<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(req.json(body)).await
    }

    async fn list<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
    ) -> Result<Listing<T>, ClientError> {
        Ok(self.call::<ListWire<T>>(req).await?.into())
    }

    // ---- namespaces ----

    /// Every namespace with a queue or a ticker, sorted.
    pub async fn list_namespaces(&self) -> Result<Listing<String>, ClientError> {
        self.list(self.request(Method::GET, &["namespace"], &[])?)
            .await
    }

    // ---- queues ----

    /// Queues ordered by name.
    pub async fn list_queues(
        &self,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Listing<Queue>, ClientError> {
        self.list(self.request(Method::GET, &["queue"], &page(offset, limit))?)
            .await
    }

    /// The queue named `name`.
    pub async fn get_queue(&self, name: &str) -> Result<Queue, ClientError> {
        self.call(self.request(Method::GET, &["queue", name], &[])?)
            .await
    }

    /// Creates a queue (`queue` required); 409 if it exists.
    pub async fn create_queue(&self, meta: &QueueMeta) -> Result<Queue, ClientError> {
        self.call_with(self.request(Method::POST, &["queue"], &[])?, meta)
            .await
    }

    /// Changes the given fields; `queue` renames.
    pub async fn update_queue(&self, name: &str, meta: &QueueMeta) -> Result<Queue, ClientError> {
        self.call_with(self.request(Method::PATCH, &["queue", name], &[])?, meta)
            .await
    }

    /// Deletes the queue and its tasks; returns the deleted queue.
    pub async fn delete_queue(&self, name: &str) -> Result<Queue, ClientError> {
        self.call(self.request(Method::DELETE, &["queue", name], &[])?)
            .await
    }

    // ---- tasks ----

    /// Tasks ordered by id; only the query's set fields are sent.
    pub async fn list_tasks(&self, query: &TaskQuery) -> Result<Listing<TaskView>, ClientError> {
        let mut q = page(query.offset, query.limit);
        if let Some(queue) = &query.queue {
            q.push(("queue", queue.clone()));
        }
        if let Some(status) = query.status {
            q.push(("status", status.as_str().to_string()));
        }
        self.list(self.request(Method::GET, &["task"], &q)?).await
    }

    /// Creates one task in `queue`; a task holding its unique key answers instead (200,
    /// `Created::Existing`).
    pub async fn create_task(
        &self,
        queue: &str,
        meta: &TaskMeta,
    ) -> Result<Created<TaskView>, ClientError> {
        let body = NewTaskWire { queue, meta };
        let res = check(
            self.request(Method::POST, &["task"], &[])?
                .json(&body)
                .send()
                .await?,
        )
        .await?;
        let existing = res.status() == StatusCode::OK;
        let task: TaskView = decode(res).await?;
        Ok(if existing {
            Created::Existing(task)
        } else {
            Created::New(task)
        })
    }

    /// Creates many tasks in `queue` at once, all or nothing (at most 10,000).
    pub async fn create_tasks(
        &self,
        queue: &str,
        metas: &[TaskMeta],
    ) -> Result<Vec<TaskView>, ClientError> {
        let body: Vec<NewTaskWire<'_>> = metas
            .iter()
            .map(|meta| NewTaskWire { queue, meta })
            .collect();
        let created: ListWire<TaskView> = self
            .call_with(self.request(Method::POST, &["task"], &[])?, &body)
            .await?;
        Ok(created.body)
    }

    /// The task with this id.
    pub async fn get_task(&self, id: TaskId) -> Result<TaskView, ClientError> {
        self.call(self.request(Method::GET, &["task", &id.to_string()], &[])?)
            .await
    }

    /// Retains the oldest available task of `queues` (empty: any queue) for `worker`;
    /// `None` when nothing is available.
    pub async fn retain_task(
        &self,
        worker: &str,
        queues: &[&str],
    ) -> Result<Option<TaskView>, ClientError> {
        let mut q = vec![("worker", worker.to_string())];
        q.extend(queues.iter().map(|name| ("queue", name.to_string())));
        self.retained(self.request(Method::PUT, &["task"], &q)?)
            .await
    }

    /// Retains from one queue, which must exist (404 otherwise).
    pub async fn retain_task_from(
        &self,
        worker: &str,
        queue: &str,
    ) -> Result<Option<TaskView>, ClientError> {
        let q = [("worker", worker.to_string())];
        self.retained(self.request(Method::PUT, &["task", queue], &q)?)
            .await
    }

    async fn retained(&self, req: RequestBuilder) -> Result<Option<TaskView>, ClientError> {
        let res = check(req.send().await?).await?;
        if res.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(res).await.map(Some)
    }

    /// Retains up to `limit` tasks (1 to 1,000) of `queues` (empty: any queue) for `worker`,
    /// waiting up to `wait` (at most 60 s; zero: not at all) for one when none is available;
    /// answers what it got, possibly nothing. One request however long it waits: the server
    /// answers as soon as a task arrives. Give the HTTP client no total timeout shorter than
    /// `wait`.
    pub async fn retain_tasks(
        &self,
        worker: &str,
        queues: &[&str],
        limit: u32,
        wait: std::time::Duration,
    ) -> Result<Vec<TaskView>, ClientError> {
        let mut q = vec![("worker", worker.to_string()), ("limit", limit.to_string())];
        if !wait.is_zero() {
            q.push(("wait", format!("{}ms", wait.as_millis())));
        }
        q.extend(queues.iter().map(|name| ("queue", name.to_string())));
        let listing: Listing<TaskView> =
            self.list(self.request(Method::PUT, &["task"], &q)?).await?;
        Ok(listing.items)
    }

    /// Releases several retained tasks in one request, each on its own; the answers come in
    /// the order given (one refusal does not affect the others).
    pub async fn release_tasks(
        &self,
        releases: &[ReleaseItem],
    ) -> Result<Vec<ReleaseAnswer>, ClientError> {
        let listing: Listing<ReleaseAnswer> = self
            .list(self.request(Method::PATCH, &["task"], &[])?.json(releases))
            .await?;
        Ok(listing.items)
    }

    /// Releases a retained task; returns it with its status after release.
    pub async fn release_task(
        &self,
        id: TaskId,
        release: Release,
    ) -> Result<TaskView, ClientError> {
        self.call_with(
            self.request(Method::PATCH, &["task", &id.to_string()], &[])?,
            &release,
        )
        .await
    }

    /// Extends `worker`'s lease on a task it holds.
    pub async fn heartbeat(&self, id: TaskId, worker: &str) -> Result<TaskView, ClientError> {
        let q = [("worker", worker.to_string())];
        self.call(self.request(Method::POST, &["task", &id.to_string(), "heartbeat"], &q)?)
            .await
    }

    // ---- system ----

    /// The Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let res = check(self.request(Method::GET, &["metrics"], &[])?.send().await?).await?;
        Ok(res.text().await?)
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.call(self.request(Method::GET, &["openapi.json"], &[])?)
            .await
    }
}

fn page(offset: Option<u64>, limit: Option<u64>) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(o) = offset {
        q.push(("offset", o.to_string()));
    }
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    q
}

/// A reqwest client builder that can do HTTPS: reqwest is built without a TLS provider of
/// its own (no aws-lc build) and panics when it finds none, so this installs *ring* first.
/// Build your own client for [`Client::with_http_client`] from it. In this workspace clippy
/// refuses `reqwest::Client::new`, `builder` and `reqwest::get` (`clippy.toml`), so nothing
/// can forget.
#[allow(clippy::disallowed_methods)]
pub fn http_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// Makes *ring* the process's rustls provider (once; a provider installed before is kept).
/// [`http_builder`] calls it; call it yourself before building a reqwest client otherwise.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The server-sent events of a streaming answer.
fn sse_stream(res: Response) -> EventStream {
    res.bytes_stream()
        .eventsource()
        .map(|item| {
            item.map(|e| SseEvent {
                event: e.event,
                id: e.id,
                data: e.data,
            })
            .map_err(|e| ClientError::Stream(e.to_string()))
        })
        .boxed()
}

/// Passes a 2xx answer through; turns any other into [`ClientError::Api`].
async fn check(res: Response) -> Result<Response, ClientError> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let text = res.text().await.unwrap_or_default();
    let (reason, detail) = match serde_json::from_str::<ErrorWire>(&text) {
        Ok(e) if e.object == "error" => (e.reason, e.detail),
        _ if text.trim().is_empty() => (
            status.canonical_reason().unwrap_or("error").to_string(),
            None,
        ),
        _ => (text, None),
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        reason,
        detail,
    })
}

async fn decode<T: DeserializeOwned>(res: Response) -> Result<T, ClientError> {
    let bytes = res.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ClientError::Decode(format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        for bad in ["", "  ", "not a url", "ftp://host/api", "mailto:x@y"] {
            assert!(
                matches!(Client::new(bad), Err(ClientError::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
        assert!(Client::new("http://127.0.0.1:8080/api").is_ok());
    }

    #[test]
    fn paths_and_queries_are_encoded() {
        let c = Client::new("http://h:1/api/").unwrap();
        let u = c
            .url(
                &["queue", "a b/c"],
                &[("worker", "host@1".into()), ("queue", "x&y".into())],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://h:1/api/queue/a%20b%2Fc?worker=host%401&queue=x%26y"
        );
        let root = Client::new("http://h:1").unwrap();
        assert_eq!(
            root.url(&["task"], &[]).unwrap().as_str(),
            "http://h:1/task"
        );
    }
}
