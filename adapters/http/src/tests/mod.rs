//! Filter tests: every route through `warp::test` on the in-memory adapter.

mod batch;
mod fuzz;
mod queues;
mod system;
mod tasks;
mod tickers;

use crate::config::HttpConfig;
use crate::server::build;
use chrono::{DateTime, Utc};
use pgqueue_app::Manager;
use pgqueue_memory::MemoryStore;
use pgqueue_ports::ManualClock;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;
use warp::Filter;
use warp::reply::Response;

/// The API on a fresh memory store with a hand-moved clock, namespace `app`.
pub(crate) struct Api {
    pub filter: warp::filters::BoxedFilter<(Response,)>,
    pub clock: Arc<ManualClock>,
    pub stop: watch::Sender<bool>,
}

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .to_utc()
}

pub(crate) fn api() -> Api {
    api_with(HttpConfig::default())
}

pub(crate) fn api_with(config: HttpConfig) -> Api {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = MemoryStore::new(clock.clone());
    let manager = Manager::new(Arc::new(store)).with_namespace("app").unwrap();
    let (stop, stopped) = watch::channel(false);
    let filter = boxed(build(manager, config, stopped));
    Api {
        filter,
        clock,
        stop,
    }
}

fn boxed(
    f: impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
) -> warp::filters::BoxedFilter<(Response,)> {
    f.boxed()
}

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: warp::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts an error envelope with this status and a reason containing `needle`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let v = self.json();
        assert_eq!(v["object"], "error", "{v}");
        assert_eq!(v["code"], status, "{v}");
        let reason = v["reason"].as_str().unwrap();
        assert!(
            reason.contains(needle),
            "reason {reason:?} does not contain {needle:?}"
        );
    }
}

impl Api {
    pub async fn send(&self, req: warp::test::RequestBuilder) -> Reply {
        let res = req.reply(&self.filter).await;
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            text: String::from_utf8_lossy(res.body()).into_owned(),
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = warp::test::request().method(method).path(path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn raw(&self, method: &str, path: &str, body: &str) -> Reply {
        self.send(warp::test::request().method(method).path(path).body(body))
            .await
    }

    /// Creates a queue and asserts success.
    pub async fn queue(&self, body: Value) -> Value {
        let r = self.call("POST", "/api/queue", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }

    /// Creates a task and asserts success.
    pub async fn task(&self, queue: &str, payload: Value) -> Value {
        let r = self
            .call(
                "POST",
                "/api/task",
                Some(serde_json::json!({"queue": queue, "payload": payload})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }
}
