//! Request bodies: JSON only, bounded in size, parsed with errors that name the problem.
//!
//! The body is read as a stream and counted, so a client that sends no `Content-Length`
//! (chunked) is held to the same limit as one that announces it.

use crate::error::HttpError;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::de::DeserializeOwned;
use warp::http::HeaderMap;
use warp::http::header::{CONTENT_LENGTH, CONTENT_TYPE};

/// A request body not read yet: only endpoints that take one read it.
pub(crate) type BodyStream = BoxStream<'static, Result<Bytes, warp::Error>>;

/// Refuses a body whose declared content type is not JSON. No content type is fine: the Go
/// clients and `curl -d` users often send none.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), HttpError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(())
    } else {
        Err(HttpError::BadRequest {
            reason: format!(
                "unsupported content type {:?}: expected application/json (JSON is expected)",
                value.to_str().unwrap_or("<not text>")
            ),
            detail: None,
        })
    }
}

/// Reads the whole body, refusing it with 413 as soon as it passes `limit` bytes, and with
/// 408 when it has not all arrived within `timeout`.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: BodyStream,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, HttpError> {
    tokio::time::timeout(timeout, read_all(headers, body, limit))
        .await
        .map_err(|_| HttpError::BodyTimeout(timeout))?
}

async fn read_all(
    headers: &HeaderMap,
    mut body: BodyStream,
    limit: u64,
) -> Result<Bytes, HttpError> {
    check_content_type(headers)?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(HttpError::PayloadTooLarge { limit });
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| HttpError::bad_request(format!("could not read the request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(HttpError::PayloadTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Whether a body carries nothing but whitespace.
pub(crate) fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// A JSON object read into `T`, and nothing else: serde's derived structs also accept a
/// JSON array of their fields in order (`[null, null]` would be a ticker patch), which no
/// client means and the API does not describe.
pub(crate) struct Object<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
            .map(Object)
    }
}

/// Parses a JSON object body into `T` (see [`Object`]).
pub(crate) fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    parse::<Object<T>>(bytes).map(|o| o.0)
}

/// Parses a JSON body into `T`. An empty body is refused: the route needs one.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if is_blank(bytes) {
        return Err(HttpError::bad_request(
            "missing request body: a JSON value is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| HttpError::BadRequest {
        reason: format!("invalid JSON body: {e}"),
        detail: Some(serde_json::json!({ "line": e.line(), "column": e.column() })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use warp::http::HeaderValue;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    fn chunks(parts: &[&'static str]) -> BodyStream {
        let parts: Vec<Result<Bytes, warp::Error>> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        stream::iter(parts).boxed()
    }

    #[test]
    fn json_or_no_content_type_is_accepted() {
        assert!(check_content_type(&headers(None)).is_ok());
        assert!(check_content_type(&headers(Some("application/json"))).is_ok());
        assert!(check_content_type(&headers(Some("Application/JSON; charset=utf-8"))).is_ok());
        let err = check_content_type(&headers(Some("text/plain"))).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.to_string().contains("JSON is expected"));
    }

    #[tokio::test]
    async fn bodies_are_counted_even_without_a_length() {
        let ok = read(&headers(None), chunks(&["12", "34"]), 4, SECOND)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"1234");
        let err = read(&headers(None), chunks(&["12", "345"]), 4, SECOND)
            .await
            .unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
    }

    const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_in_time_is_408() {
        let never: BodyStream = futures::stream::pending().boxed();
        let err = read(&headers(None), never, 4, SECOND).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 408);
    }

    #[test]
    fn object_bodies_must_be_objects() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Two {
            #[allow(dead_code)]
            a: Option<u8>,
        }
        assert!(parse_object::<Two>(br#"{"a":1}"#).is_ok());
        let err = parse_object::<Two>(b"[1]").unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        assert!(parse_object::<Two>(br#"{"b":1}"#).is_err());
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let err = parse::<serde_json::Value>(b"  ").unwrap_err();
        assert!(err.to_string().contains("missing request body"));
        let err = parse::<serde_json::Value>(b"{\"a\":").unwrap_err();
        assert!(err.to_string().starts_with("invalid JSON body"));
        assert!(err.detail().is_some());
    }
}
