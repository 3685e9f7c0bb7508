//! How much of a request the server reads before answering, and how long it waits for it.
//!
//! hyper, under warp, refuses oversized requests itself, but with an empty body where every
//! pgqueue answer is the JSON envelope. So hyper's own limits are set far above pgqueue's,
//! and pgqueue checks its limits first, answering 414 and 431 as envelopes. What hyper still
//! refuses on its own (a request target over 64 KiB, a header section over
//! [`HYPER_BUFFER`], bytes no HTTP parser accepts) gets hyper's bare answer: that is as far
//! as the server library lets an application shape errors.

use crate::error::HttpError;
use warp::http::HeaderMap;

/// The longest request target (path and query) answered: 8 KiB. Longer → 414.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) answered: 32 KiB. More → 431.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper's read buffer: far above [`MAX_HEADER_BYTES`], so pgqueue's 431 comes first.
pub(crate) const HYPER_BUFFER: usize = 1024 * 1024;
/// hyper's limit on the number of headers, likewise far above what pgqueue's size allows.
pub(crate) const HYPER_MAX_HEADERS: usize = 2_000;

/// Refuses a request whose target or headers are larger than pgqueue answers.
pub(crate) fn check(path: &str, query: &str, headers: &HeaderMap) -> Result<(), HttpError> {
    let target = path.len() + query.len() + 1;
    if target > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(HttpError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    #[test]
    fn long_targets_and_large_headers_are_refused() {
        let h = HeaderMap::new();
        assert!(check("/api/task", "", &h).is_ok());
        let err = check("/api/task", &"q".repeat(MAX_URI_BYTES), &h).unwrap_err();
        assert_eq!(err.status().as_u16(), 414);
        let mut big = HeaderMap::new();
        big.insert(
            "x-big",
            HeaderValue::from_str(&"v".repeat(MAX_HEADER_BYTES)).unwrap(),
        );
        assert_eq!(check("/", "", &big).unwrap_err().status().as_u16(), 431);
    }
}
