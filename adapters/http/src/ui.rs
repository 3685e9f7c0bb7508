//! The web dashboard (`docs/dashboard.md`): three static files embedded in the binary and
//! served outside the API prefix, so `cargo run` shows it with no build step and no network.
//! The page learns the API prefix from `index.html`, where the server writes it in place of
//! `__PGQUEUE_API__`; everything else it does goes through the public REST API and the
//! event stream, like any other client.

use warp::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::{Reply, Response};

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// The placeholder in `index.html` replaced by the API prefix.
const API_PLACEHOLDER: &str = "__PGQUEUE_API__";

/// Only the page's own files, no inline script, no other origin: a payload that slipped past
/// the page's escaping still could not run.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The dashboard's answer to `method path`, if it is one of its files.
pub(crate) fn asset(method: &Method, path: &str, prefix: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (body, content_type) = match path {
        "/" | "/index.html" => (
            INDEX.replace(API_PLACEHOLDER, prefix),
            "text/html; charset=utf-8",
        ),
        "/assets/app.js" => (APP_JS.to_string(), "text/javascript; charset=utf-8"),
        "/assets/app.css" => (APP_CSS.to_string(), "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut res = warp::reply::with_status(body, StatusCode::OK).into_response();
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_told_the_api_prefix_and_its_assets_are_served() {
        let get = Method::GET;
        let page = asset(&get, "/", "/v1").expect("index");
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(!INDEX.is_empty() && INDEX.contains(API_PLACEHOLDER));
        for path in ["/assets/app.js", "/assets/app.css"] {
            assert!(asset(&get, path, "/api").is_some(), "{path}");
        }
        assert!(asset(&get, "/assets/other.js", "/api").is_none());
        assert!(asset(&Method::POST, "/", "/api").is_none());
    }
}
