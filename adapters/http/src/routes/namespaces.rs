//! `GET P/namespace`: which tenants exist.

use crate::envelope::{self, ListEnvelope};
use crate::error::HttpError;
use pgqueue_app::Manager;
use warp::reply::Response;

/// Every namespace with a queue or a ticker, sorted, as a list envelope of names.
pub(crate) async fn list(m: &Manager) -> Result<Response, HttpError> {
    let names: Vec<String> = m
        .list_namespaces()
        .await?
        .into_iter()
        .map(|n| n.as_str().to_string())
        .collect();
    Ok(envelope::list(ListEnvelope {
        count: names.len() as u64,
        body: names,
    }))
}
