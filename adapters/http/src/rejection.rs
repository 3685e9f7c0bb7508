//! warp's own rejections as error envelopes.
//!
//! The API's filter resolves every request itself, so warp rarely rejects; this is the net
//! under it, so that even a rejection from warp's machinery reaches the client as the
//! envelope with a fitting status, never as warp's plain-text default.

use crate::envelope;
use crate::error::HttpError;
use std::convert::Infallible;
use warp::Rejection;
use warp::reply::Response;

/// Turns any rejection into an envelope response.
pub(crate) async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(envelope::error(&to_error(&rejection)))
}

fn to_error(r: &Rejection) -> HttpError {
    if let Some(e) = r.find::<HttpError>() {
        return match e {
            HttpError::App(a) => HttpError::App(a.clone()),
            HttpError::BadRequest { reason, detail } => HttpError::BadRequest {
                reason: reason.clone(),
                detail: detail.clone(),
            },
            other => HttpError::bad_request(other.to_string()),
        };
    }
    if r.is_not_found() {
        return HttpError::RouteNotFound("this path".into());
    }
    if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        return HttpError::MethodNotAllowed {
            method: "this method".into(),
            path: "this path".into(),
            allow: Vec::new(),
        };
    }
    if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        return HttpError::PayloadTooLarge { limit: 0 };
    }
    if let Some(e) = r.find::<warp::filters::body::BodyDeserializeError>() {
        return HttpError::bad_request(format!("invalid JSON body: {e}"));
    }
    if r.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return HttpError::bad_request("unsupported content type: JSON is expected");
    }
    if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        return HttpError::bad_request(e.to_string());
    }
    tracing::error!(rejection = ?r, "unhandled rejection");
    HttpError::Unavailable(format!("request could not be handled: {r:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::Filter;

    #[tokio::test]
    async fn warp_rejections_become_envelopes() {
        let f = warp::path("x")
            .and(warp::get())
            .map(warp::reply)
            .recover(recover);
        let res = warp::test::request().path("/y").reply(&f).await;
        assert_eq!(res.status(), 404);
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["object"], "error");
        assert_eq!(v["code"], 404);
    }
}
