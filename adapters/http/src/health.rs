//! Health checks for orchestrators, outside the API prefix and open even with `--auth`:
//! `GET /healthz` says the process serves; `GET /readyz` that the storage answers and its
//! schema is current (503 with the envelope naming why not).

use crate::envelope;
use crate::error::HttpError;
use pgqueue_app::Manager;
use serde_json::json;
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

/// The answer to a health check, if `path` is one.
pub(crate) async fn answer(method: &Method, path: &str, manager: &Manager) -> Option<Response> {
    if !matches!(path, "/healthz" | "/readyz") {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        return Some(envelope::error(&HttpError::MethodNotAllowed {
            method: method.to_string(),
            path: path.to_string(),
            allow: vec!["GET", "HEAD"],
        }));
    }
    match path {
        "/healthz" => Some(ok("ok")),
        "/readyz" => Some(match manager.ready().await {
            Ok(()) => ok("ready"),
            Err(e) => envelope::error(&HttpError::Unavailable(format!("not ready: {e}"))),
        }),
        _ => None,
    }
}

fn ok(status: &str) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({ "status": status })),
        StatusCode::OK,
    )
    .into_response()
}
