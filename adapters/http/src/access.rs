//! Who may call which route (`docs/security.md`): the scope each endpoint needs, and the
//! check of a request's bearer token against it when the server runs with `--auth`.

use crate::error::HttpError;
use crate::router::Endpoint;
use pgqueue_app::auth::Authenticator;
use pgqueue_domain::Namespace;
use pgqueue_domain::auth::Scope;
use warp::http::HeaderMap;
use warp::http::header::AUTHORIZATION;

/// The scope an endpoint needs: `read` for every GET and stream, `enqueue` to create tasks,
/// `consume` for what workers do, `admin` for everything else.
pub(crate) fn scope(endpoint: &Endpoint) -> Scope {
    use Endpoint as E;
    match endpoint {
        E::ListNamespaces
        | E::ListQueues
        | E::GetQueue(_)
        | E::ListTasks
        | E::GetTask(_)
        | E::TickerSchedule(_)
        | E::ListTickers
        | E::NextTicker
        | E::GetTicker(_)
        | E::Events
        | E::Metrics
        | E::OpenApi => Scope::Read,
        E::CreateTasks => Scope::Enqueue,
        E::RetainAny | E::RetainFrom(_) | E::ReleaseTask(_) | E::ReleaseTasks | E::Heartbeat(_) => {
            Scope::Consume
        }
        E::CreateQueue
        | E::UpdateQueue(_)
        | E::DeleteQueue(_)
        | E::PurgeTasks
        | E::DeleteTask(_)
        | E::CancelTask(_)
        | E::RetryTask(_)
        | E::RetryTasks(_)
        | E::PauseQueue(_)
        | E::ResumeQueue(_)
        | E::PauseTicker(_)
        | E::ResumeTicker(_)
        | E::CreateTicker
        | E::UpdateTicker(_)
        | E::DeleteTicker(_) => Scope::Admin,
    }
}

/// The bearer token of a request, if it sends one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (kind, token) = value.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Checks the request's token for `endpoint` in `ns`: 401 when it is missing, unknown,
/// expired or revoked; 403 when it lacks the scope or the namespace.
pub(crate) async fn check(
    auth: &Authenticator,
    headers: &HeaderMap,
    ns: &Namespace,
    endpoint: &Endpoint,
) -> Result<(), HttpError> {
    match auth.check(bearer(headers), ns, scope(endpoint)).await? {
        Ok(()) => Ok(()),
        Err(denial) if denial.is_unauthenticated() => {
            Err(HttpError::Unauthorized(denial.to_string()))
        }
        Err(denial) => Err(HttpError::Forbidden(denial.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer  pgq_abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("pgq_abc"));
        h.insert(AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn workers_consume_producers_enqueue_readers_read() {
        assert_eq!(scope(&Endpoint::RetainAny), Scope::Consume);
        assert_eq!(scope(&Endpoint::CreateTasks), Scope::Enqueue);
        assert_eq!(scope(&Endpoint::Events), Scope::Read);
        assert_eq!(scope(&Endpoint::DeleteTask(1)), Scope::Admin);
    }
}
