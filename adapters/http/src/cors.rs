//! Cross-origin requests (`--http.cors-origin`, `docs/security.md`): browsers from the listed
//! origins may call the API; a preflight from any other origin is refused with 403, and
//! answers to other origins carry no CORS headers, so their browsers keep them unread.

use crate::error::HttpError;
use warp::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, HeaderValue, ORIGIN, VARY,
};
use warp::http::{HeaderMap, Method, StatusCode};
use warp::reply::{Reply, Response};

/// The methods and request headers a listed origin may use.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const HEADERS: &str = "authorization, content-type, last-event-id";

/// The origins allowed to call the API from a browser.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// Allows exactly these origins (`scheme://host[:port]`, compared without a trailing
    /// slash and case-insensitively).
    pub(crate) fn new(origins: &[String]) -> Self {
        Self {
            origins: origins.iter().map(|o| normalise(o)).collect(),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| *o == normalise(origin))
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`); `None` for any other request.
    pub(crate) fn preflight(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Result<Response, HttpError>> {
        if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let origin = headers.get(ORIGIN)?.to_str().unwrap_or("");
        if !self.allows(origin) {
            return Some(Err(HttpError::Forbidden(format!(
                "origin {origin:?} may not call this API (see --http.cors-origin)"
            ))));
        }
        let mut res =
            warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(HEADERS),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.insert(VARY, HeaderValue::from_static("Origin"));
        Some(Ok(res))
    }

    /// Adds the allow-origin header to an answer for a listed origin.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, response: &mut Response) {
        let Some(origin) = origin.and_then(|o| o.to_str().ok()) else {
            return;
        };
        if self.allows(origin)
            && let Ok(v) = HeaderValue::from_str(origin)
        {
            response
                .headers_mut()
                .insert(ACCESS_CONTROL_ALLOW_ORIGIN, v);
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_from(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, origin.parse().unwrap());
        h.insert(ACCESS_CONTROL_REQUEST_METHOD, "PUT".parse().unwrap());
        h
    }

    #[test]
    fn listed_origins_are_answered_and_others_refused() {
        let cors = Cors::new(&["https://ops.example.com/".to_string()]);
        let ok = cors
            .preflight(&Method::OPTIONS, &preflight_from("https://OPS.example.com"))
            .unwrap()
            .unwrap();
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            ok.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://OPS.example.com"
        );
        assert!(
            ok.headers()[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("authorization")
        );
        let refused = cors.preflight(&Method::OPTIONS, &preflight_from("https://evil.example"));
        assert!(matches!(refused, Some(Err(HttpError::Forbidden(_)))));
        assert!(
            cors.preflight(&Method::GET, &preflight_from("https://evil.example"))
                .is_none()
        );
    }
}
