//! Query strings, parsed by hand because `?queue=a&queue=b` repeats a key.
//!
//! warp's `query()` goes through serde_urlencoded, which cannot collect repeated keys; this
//! keeps every pair in order (percent-decoding and `+` handled by `form_urlencoded`) and
//! offers typed accessors whose errors name the parameter.

use crate::error::HttpError;
use pgqueue_domain::{Error as DomainError, Page, QueueName, Status};

/// The decoded pairs of one query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string (without the `?`).
    pub fn parse(raw: &str) -> Self {
        Self {
            pairs: form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// Every non-empty value of `key`, in order; commas also separate values
    /// (`?queue=a,b`), since no name may contain one.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The value of a single-valued `key`; empty counts as absent, repeating it is an error
    /// (which of two offsets did the client mean?).
    pub fn one(&self, key: &str) -> Result<Option<&str>, HttpError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        let first = values.next();
        if values.next().is_some() {
            return Err(HttpError::bad_request(format!(
                "query parameter {key} is given more than once"
            )));
        }
        Ok(first)
    }

    /// A non-negative integer parameter.
    pub fn number(&self, key: &str) -> Result<Option<u64>, HttpError> {
        self.one(key)?
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    HttpError::bad_request(format!(
                        "invalid {key} {v:?}: expected a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// `?wait=D`: a duration as the API writes them (`30s`, `500ms`, or integer
    /// nanoseconds), not negative; its upper bound is the Manager's.
    pub fn wait(&self) -> Result<Option<std::time::Duration>, HttpError> {
        let Some(v) = self.one("wait")? else {
            return Ok(None);
        };
        let d = match v.parse::<i64>() {
            Ok(ns) => pgqueue_domain::Duration::from_nanos(ns),
            Err(_) => pgqueue_domain::Duration::parse(v).map_err(|e| {
                HttpError::bad_request(format!("invalid wait {v:?}: {e} (e.g. wait=30s)"))
            })?,
        };
        if d.as_nanos() < 0 {
            return Err(HttpError::bad_request(format!(
                "invalid wait {v:?}: must not be negative"
            )));
        }
        Ok(Some(d.to_std()))
    }

    /// `?offset&limit` as a page (limit defaulted and capped by the domain).
    pub fn page(&self) -> Result<Page, HttpError> {
        Ok(Page::new(self.number("offset")?, self.number("limit")?))
    }

    /// `?status=`, one of the six names.
    pub fn status(&self) -> Result<Option<Status>, HttpError> {
        Ok(self.one("status")?.map(Status::parse).transpose()?)
    }

    /// `?queue=` as one queue name (listing filter).
    pub fn queue(&self) -> Result<Option<QueueName>, HttpError> {
        Ok(self.one("queue")?.map(QueueName::parse).transpose()?)
    }

    /// `?worker=`, required where it is asked for: retaining and heartbeats.
    pub fn worker(&self) -> Result<&str, HttpError> {
        self.one("worker")?
            .ok_or_else(|| DomainError::MissingWorker.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_encoding_are_handled() {
        let q = Query::parse("queue=a&queue=b%20c&queue=&queue=d,e&worker=host%401+x");
        assert_eq!(q.all("queue"), vec!["a", "b c", "d", "e"]);
        assert_eq!(q.worker().unwrap(), "host@1 x");
        assert!(q.one("queue").is_err());
    }

    #[test]
    fn numbers_statuses_and_workers_are_checked() {
        assert_eq!(
            Query::parse("offset=5&limit=1000").page().unwrap(),
            Page::new(Some(5), Some(100))
        );
        let err = Query::parse("offset=abc").page().unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.to_string().contains("offset"));
        assert!(Query::parse("limit=-1").page().is_err());
        assert_eq!(
            Query::parse("status=Retry").status().unwrap(),
            Some(Status::Retry)
        );
        assert!(
            Query::parse("status=done")
                .status()
                .unwrap_err()
                .to_string()
                .contains("invalid status")
        );
        assert_eq!(
            Query::parse("").worker().unwrap_err().to_string(),
            "missing worker"
        );
        assert_eq!(Query::parse("offset=").page().unwrap(), Page::default());
    }
}
