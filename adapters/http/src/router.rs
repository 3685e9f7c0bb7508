//! Which endpoint a request is for: one function from `method + path` to an [`Endpoint`].
//!
//! The table is explicit so that every answer is deliberate: an unknown path is a 404, a
//! known path with another method a 405 listing the allowed ones, a task id that is not a
//! number a 400 naming it. The matched route's pattern (`/task/{id}`) labels the metrics,
//! never the raw path, so ids do not explode the label space.

use crate::error::HttpError;
use pgqueue_domain::TaskId;
use warp::http::Method;

/// The methods the API uses; anything else is `Other` (always a 405 or 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Verb {
    /// Classifies a request method.
    pub fn of(method: &Method) -> Self {
        match *method {
            Method::GET => Verb::Get,
            Method::POST => Verb::Post,
            Method::PUT => Verb::Put,
            Method::PATCH => Verb::Patch,
            Method::DELETE => Verb::Delete,
            _ => Verb::Other,
        }
    }

    /// The method's name as HTTP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::Other => "OTHER",
        }
    }
}

/// Every route of the API: method and pattern (relative to the prefix).
pub(crate) const ROUTES: &[(Verb, &str)] = &[
    (Verb::Get, "/namespace"),
    (Verb::Get, "/queue"),
    (Verb::Post, "/queue"),
    (Verb::Get, "/queue/{name}"),
    (Verb::Patch, "/queue/{name}"),
    (Verb::Delete, "/queue/{name}"),
    (Verb::Get, "/task"),
    (Verb::Post, "/task"),
    (Verb::Put, "/task"),
    (Verb::Patch, "/task"),
    (Verb::Get, "/task/{id}"),
    // One template for both: `{id}` is a queue name for PUT (the Go system's routes).
    (Verb::Put, "/task/{id}"),
    (Verb::Patch, "/task/{id}"),
    (Verb::Post, "/task/{id}/heartbeat"),
    (Verb::Delete, "/task"),
    (Verb::Delete, "/task/{id}"),
    (Verb::Post, "/task/{id}/cancel"),
    (Verb::Post, "/task/{id}/retry"),
    (Verb::Post, "/queue/{name}/retry"),
    (Verb::Post, "/queue/{name}/pause"),
    (Verb::Post, "/queue/{name}/resume"),
    (Verb::Get, "/ticker/{name}/schedule"),
    (Verb::Post, "/ticker/{name}/pause"),
    (Verb::Post, "/ticker/{name}/resume"),
    (Verb::Get, "/ticker"),
    (Verb::Post, "/ticker"),
    (Verb::Get, "/ticker/next"),
    (Verb::Get, "/ticker/{name}"),
    (Verb::Patch, "/ticker/{name}"),
    (Verb::Delete, "/ticker/{name}"),
    (Verb::Get, "/events"),
    (Verb::Get, "/metrics"),
    (Verb::Get, "/openapi.json"),
];

/// What a request asks for, with its path parameters decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ListNamespaces,
    ListQueues,
    CreateQueue,
    GetQueue(String),
    UpdateQueue(String),
    DeleteQueue(String),
    ListTasks,
    CreateTasks,
    RetainAny,
    ReleaseTasks,
    GetTask(TaskId),
    RetainFrom(String),
    ReleaseTask(TaskId),
    Heartbeat(TaskId),
    PurgeTasks,
    DeleteTask(TaskId),
    CancelTask(TaskId),
    RetryTask(TaskId),
    RetryTasks(String),
    PauseQueue(String),
    ResumeQueue(String),
    TickerSchedule(String),
    PauseTicker(String),
    ResumeTicker(String),
    ListTickers,
    CreateTicker,
    NextTicker,
    GetTicker(String),
    UpdateTicker(String),
    DeleteTicker(String),
    Events,
    Metrics,
    OpenApi,
}

/// A resolved request: the endpoint and the pattern that labels it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matched {
    pub endpoint: Endpoint,
    pub pattern: &'static str,
}

/// A request that matches no endpoint, with the pattern when the path was known.
#[derive(Debug)]
pub(crate) struct Miss {
    pub pattern: Option<&'static str>,
    pub error: HttpError,
}

/// Resolves decoded path segments (below the prefix) and a method.
pub(crate) fn resolve(
    verb: Verb,
    method: &str,
    segments: &[String],
    path: &str,
) -> Result<Matched, Miss> {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let one = |i: usize| segments[i].clone();
    use Endpoint as E;
    use Verb as V;
    let (pattern, endpoint): (&'static str, Option<Result<Endpoint, HttpError>>) =
        match (segs.as_slice(), verb) {
            (["namespace"], V::Get) => ("/namespace", Some(Ok(E::ListNamespaces))),
            (["namespace"], _) => ("/namespace", None),
            (["queue"], V::Get) => ("/queue", Some(Ok(E::ListQueues))),
            (["queue"], V::Post) => ("/queue", Some(Ok(E::CreateQueue))),
            (["queue"], _) => ("/queue", None),
            (["queue", _], V::Get) => ("/queue/{name}", Some(Ok(E::GetQueue(one(1))))),
            (["queue", _], V::Patch) => ("/queue/{name}", Some(Ok(E::UpdateQueue(one(1))))),
            (["queue", _], V::Delete) => ("/queue/{name}", Some(Ok(E::DeleteQueue(one(1))))),
            (["queue", _], _) => ("/queue/{name}", None),
            (["queue", _, "retry"], V::Post) => {
                ("/queue/{name}/retry", Some(Ok(E::RetryTasks(one(1)))))
            }
            (["queue", _, "retry"], _) => ("/queue/{name}/retry", None),
            (["queue", _, "pause"], V::Post) => {
                ("/queue/{name}/pause", Some(Ok(E::PauseQueue(one(1)))))
            }
            (["queue", _, "pause"], _) => ("/queue/{name}/pause", None),
            (["queue", _, "resume"], V::Post) => {
                ("/queue/{name}/resume", Some(Ok(E::ResumeQueue(one(1)))))
            }
            (["queue", _, "resume"], _) => ("/queue/{name}/resume", None),
            (["task"], V::Get) => ("/task", Some(Ok(E::ListTasks))),
            (["task"], V::Post) => ("/task", Some(Ok(E::CreateTasks))),
            (["task"], V::Put) => ("/task", Some(Ok(E::RetainAny))),
            (["task"], V::Patch) => ("/task", Some(Ok(E::ReleaseTasks))),
            (["task"], V::Delete) => ("/task", Some(Ok(E::PurgeTasks))),
            (["task"], _) => ("/task", None),
            (["task", _], V::Put) => ("/task/{id}", Some(Ok(E::RetainFrom(one(1))))),
            (["task", id], V::Get) => ("/task/{id}", Some(task_id(id).map(E::GetTask))),
            (["task", id], V::Patch) => ("/task/{id}", Some(task_id(id).map(E::ReleaseTask))),
            (["task", id], V::Delete) => ("/task/{id}", Some(task_id(id).map(E::DeleteTask))),
            (["task", _], _) => ("/task/{id}", None),
            (["task", id, "heartbeat"], V::Post) => {
                ("/task/{id}/heartbeat", Some(task_id(id).map(E::Heartbeat)))
            }
            (["task", _, "heartbeat"], _) => ("/task/{id}/heartbeat", None),
            (["task", id, "cancel"], V::Post) => {
                ("/task/{id}/cancel", Some(task_id(id).map(E::CancelTask)))
            }
            (["task", _, "cancel"], _) => ("/task/{id}/cancel", None),
            (["task", id, "retry"], V::Post) => {
                ("/task/{id}/retry", Some(task_id(id).map(E::RetryTask)))
            }
            (["task", _, "retry"], _) => ("/task/{id}/retry", None),
            (["events"], V::Get) => ("/events", Some(Ok(E::Events))),
            (["events"], _) => ("/events", None),
            (["ticker"], V::Get) => ("/ticker", Some(Ok(E::ListTickers))),
            (["ticker"], V::Post) => ("/ticker", Some(Ok(E::CreateTicker))),
            (["ticker"], _) => ("/ticker", None),
            (["ticker", "next"], V::Get) => ("/ticker/next", Some(Ok(E::NextTicker))),
            (["ticker", "next"], _) => ("/ticker/next", None),
            (["ticker", _], V::Get) => ("/ticker/{name}", Some(Ok(E::GetTicker(one(1))))),
            (["ticker", _], V::Patch) => ("/ticker/{name}", Some(Ok(E::UpdateTicker(one(1))))),
            (["ticker", _], V::Delete) => ("/ticker/{name}", Some(Ok(E::DeleteTicker(one(1))))),
            (["ticker", _], _) => ("/ticker/{name}", None),
            (["ticker", _, "schedule"], V::Get) => (
                "/ticker/{name}/schedule",
                Some(Ok(E::TickerSchedule(one(1)))),
            ),
            (["ticker", _, "schedule"], _) => ("/ticker/{name}/schedule", None),
            (["ticker", _, "pause"], V::Post) => {
                ("/ticker/{name}/pause", Some(Ok(E::PauseTicker(one(1)))))
            }
            (["ticker", _, "pause"], _) => ("/ticker/{name}/pause", None),
            (["ticker", _, "resume"], V::Post) => {
                ("/ticker/{name}/resume", Some(Ok(E::ResumeTicker(one(1)))))
            }
            (["ticker", _, "resume"], _) => ("/ticker/{name}/resume", None),
            (["metrics"], V::Get) => ("/metrics", Some(Ok(E::Metrics))),
            (["metrics"], _) => ("/metrics", None),
            (["openapi.json"], V::Get) => ("/openapi.json", Some(Ok(E::OpenApi))),
            (["openapi.json"], _) => ("/openapi.json", None),
            _ => {
                return Err(Miss {
                    pattern: None,
                    error: HttpError::RouteNotFound(path.to_string()),
                });
            }
        };
    match endpoint {
        Some(Ok(endpoint)) => Ok(Matched { endpoint, pattern }),
        Some(Err(error)) => Err(Miss {
            pattern: Some(pattern),
            error,
        }),
        None => Err(Miss {
            pattern: Some(pattern),
            error: HttpError::MethodNotAllowed {
                method: method.to_string(),
                path: path.to_string(),
                allow: allowed(segs.as_slice()),
            },
        }),
    }
}

/// The methods a known path accepts, for 405 answers: those of the route patterns that
/// match the segments, preferring the patterns with the most literal segments (so
/// `/ticker/next` is not also `/ticker/{name}`).
fn allowed(segs: &[&str]) -> Vec<&'static str> {
    let literal_matches = |pattern: &str| -> Option<usize> {
        let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        if parts.len() != segs.len() {
            return None;
        }
        let mut literals = 0;
        for (p, s) in parts.iter().zip(segs) {
            if p.starts_with('{') {
                continue;
            }
            if p != s {
                return None;
            }
            literals += 1;
        }
        Some(literals)
    };
    let best = ROUTES.iter().filter_map(|(_, p)| literal_matches(p)).max();
    ROUTES
        .iter()
        .filter(|(_, p)| best.is_some() && literal_matches(p) == best)
        .map(|(v, _)| v.as_str())
        .collect()
}

/// Parses a task id path segment: an integer, optionally negative (no sign, space or other
/// character else); anything else is a client error naming it, not a 404.
fn task_id(raw: &str) -> Result<TaskId, HttpError> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let well_formed = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed
        .then(|| raw.parse::<TaskId>().ok())
        .flatten()
        .ok_or_else(|| {
            HttpError::bad_request(format!("invalid task id {raw:?}: expected an integer"))
        })
}

/// Splits the part of a raw path below the prefix into percent-decoded segments; one
/// trailing slash is ignored. `None` when the path is not under the prefix.
pub(crate) fn segments(raw_path: &str, prefix: &str) -> Option<Vec<String>> {
    let rest = raw_path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Vec::new());
    }
    Some(
        rest.split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(verb: Verb, path: &str) -> Result<Matched, Miss> {
        let segs = segments(path, "/api").unwrap();
        resolve(verb, verb.as_str(), &segs, path)
    }

    #[test]
    fn every_route_in_the_table_resolves_to_its_pattern() {
        for (verb, pattern) in ROUTES {
            let path = format!(
                "/api{}",
                pattern.replace("{name}", "x").replace("{id}", "7")
            );
            let m = go(*verb, &path).unwrap_or_else(|m| panic!("{verb:?} {path}: {:?}", m.error));
            assert_eq!(m.pattern, *pattern, "{verb:?} {path}");
        }
    }

    #[test]
    fn misses_are_404_405_or_400() {
        assert_eq!(
            go(Verb::Get, "/api/nope")
                .unwrap_err()
                .error
                .status()
                .as_u16(),
            404
        );
        let miss = go(Verb::Post, "/api/task/1").unwrap_err();
        assert_eq!(miss.error.status().as_u16(), 405);
        assert_eq!(miss.pattern, Some("/task/{id}"));
        assert_eq!(
            miss.error.detail().unwrap(),
            serde_json::json!({"allow":["GET","PUT","PATCH","DELETE"]})
        );
        let miss = go(Verb::Get, "/api/ticker/next/pause").unwrap_err();
        assert_eq!(
            miss.error.detail().unwrap(),
            serde_json::json!({"allow":["POST"]})
        );
        let miss = go(Verb::Post, "/api/ticker/next").unwrap_err();
        assert_eq!(
            miss.error.detail().unwrap(),
            serde_json::json!({"allow":["GET"]})
        );
        let bad = go(Verb::Get, "/api/task/abc").unwrap_err();
        assert_eq!(bad.error.status().as_u16(), 400);
        assert!(bad.error.to_string().contains("invalid task id \"abc\""));
        assert_eq!(
            go(Verb::Put, "/api/task/abc").unwrap().endpoint,
            Endpoint::RetainFrom("abc".into())
        );
        assert_eq!(
            go(Verb::Get, "/api/queue/My%20Queue/").unwrap().endpoint,
            Endpoint::GetQueue("My Queue".into())
        );
        assert!(segments("/apix/queue", "/api").is_none());
        assert!(segments("/other", "/api").is_none());
        assert_eq!(segments("/queue", "").unwrap(), vec!["queue".to_string()]);
    }
}
