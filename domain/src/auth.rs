//! Who may do what (`docs/security.md`): API tokens grant scopes in namespaces, until they
//! expire or are revoked. Stated here once; the HTTP server asks [`Grant::allows`] for every
//! request, after finding the token by the hash of its secret.

use crate::error::{Error, Result};
use crate::name::Namespace;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every GET, the event and ticker streams, and the metrics.
    Read,
    /// Creating tasks.
    Enqueue,
    /// Retaining, releasing and heartbeating tasks: what workers do.
    Consume,
    /// Everything else: queues, tickers, and operating tasks (cancel, retry, delete, purge,
    /// pause).
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Enqueue, Scope::Consume, Scope::Admin];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Enqueue => "enqueue",
            Scope::Consume => "consume",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope's name (trimmed, case-insensitive).
    pub fn parse(s: &str) -> Result<Scope> {
        let s = s.trim().to_ascii_lowercase();
        Scope::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::InvalidField {
                field: "scope",
                reason: format!("{s:?} is not one of read, enqueue, consume, admin"),
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespaces a token reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Namespaces {
    /// Every namespace except the system one (`*`).
    All,
    /// These.
    Only(Vec<Namespace>),
}

impl Namespaces {
    /// Parses names as given (`*` alone means all); at least one.
    pub fn parse(names: &[&str]) -> Result<Namespaces> {
        if names.is_empty() {
            return Err(Error::InvalidField {
                field: "namespace",
                reason: "a token needs at least one namespace (or '*')".into(),
            });
        }
        if names.iter().any(|n| n.trim() == "*") {
            return Ok(Namespaces::All);
        }
        let mut list = names
            .iter()
            .map(|n| Namespace::parse_application(n))
            .collect::<Result<Vec<_>>>()?;
        list.sort();
        list.dedup();
        Ok(Namespaces::Only(list))
    }

    /// Whether `ns` is reached: `*` never reaches the system namespace.
    pub fn reach(&self, ns: &Namespace) -> bool {
        match self {
            Namespaces::All => !ns.is_system(),
            Namespaces::Only(list) => list.contains(ns),
        }
    }

    /// How the token list shows them (`*` or the names).
    pub fn names(&self) -> Vec<String> {
        match self {
            Namespaces::All => vec!["*".into()],
            Namespaces::Only(list) => list.iter().map(|n| n.as_str().to_string()).collect(),
        }
    }
}

/// What a stored token grants, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The namespaces.
    pub namespaces: Namespaces,
    /// The scopes.
    pub scopes: Vec<Scope>,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Why a request is refused: the first two are 401 (who are you?), the others 403 (you may
/// not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No token, or one nobody issued.
    #[error("missing or unknown token")]
    Unknown,
    /// The token expired.
    #[error("token expired")]
    Expired,
    /// The token was revoked.
    #[error("token revoked")]
    Revoked,
    /// The token lacks the scope.
    #[error("token lacks scope {0}")]
    Scope(Scope),
    /// The token does not reach the namespace.
    #[error("token does not reach namespace {0}")]
    Namespace(String),
}

impl Denial {
    /// Whether the caller is unauthenticated (401) rather than unauthorised (403).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Denial::Unknown | Denial::Expired | Denial::Revoked)
    }
}

impl Grant {
    /// Whether the grant allows `scope` in `ns` at `now`.
    pub fn allows(
        &self,
        ns: &Namespace,
        scope: Scope,
        now: Timestamp,
    ) -> std::result::Result<(), Denial> {
        if self.revoked_at.is_some_and(|r| r <= now) {
            return Err(Denial::Revoked);
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            return Err(Denial::Expired);
        }
        if !self.scopes.contains(&scope) {
            return Err(Denial::Scope(scope));
        }
        if !self.namespaces.reach(ns) {
            return Err(Denial::Namespace(ns.as_str().to_string()));
        }
        Ok(())
    }
}

/// How often a token's `last_used_at` is written at most: a busy worker's token is not
/// rewritten on every request.
pub const LAST_USED_EVERY_SECS: i64 = 60;

/// Whether a use at `now` should be written, given the last one written.
pub fn should_record_use(last_used_at: Option<Timestamp>, now: Timestamp) -> bool {
    last_used_at.is_none_or(|t| (now - t).num_seconds() >= LAST_USED_EVERY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn ns(n: &str) -> Namespace {
        Namespace::parse(n).unwrap()
    }

    fn grant(names: &[&str], scopes: &[Scope]) -> Grant {
        Grant {
            namespaces: Namespaces::parse(names).unwrap(),
            scopes: scopes.to_vec(),
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_grant_allows_its_scopes_in_its_namespaces_only() {
        let now = Timestamp::default();
        let g = grant(&["billing"], &[Scope::Read, Scope::Consume]);
        assert_eq!(g.allows(&ns("billing"), Scope::Read, now), Ok(()));
        assert_eq!(
            g.allows(&ns("billing"), Scope::Admin, now),
            Err(Denial::Scope(Scope::Admin))
        );
        assert_eq!(
            g.allows(&ns("shop"), Scope::Read, now),
            Err(Denial::Namespace("shop".into()))
        );
    }

    #[test]
    fn star_reaches_every_namespace_but_the_system_one() {
        let all = Namespaces::parse(&["*"]).unwrap();
        assert!(all.reach(&ns("anything")));
        assert!(!all.reach(&Namespace::system()));
        assert!(Namespaces::parse(&[]).is_err());
        assert!(
            Namespaces::parse(&["pgqueue"]).is_err(),
            "the system namespace is reserved"
        );
    }

    #[test]
    fn expired_and_revoked_tokens_are_unauthenticated() {
        let now = Timestamp::default();
        let mut g = grant(&["a"], &[Scope::Read]);
        g.expires_at = Some(now);
        assert_eq!(g.allows(&ns("a"), Scope::Read, now), Err(Denial::Expired));
        g.expires_at = Some(now + TimeDelta::seconds(1));
        assert_eq!(g.allows(&ns("a"), Scope::Read, now), Ok(()));
        g.revoked_at = Some(now);
        assert_eq!(g.allows(&ns("a"), Scope::Read, now), Err(Denial::Revoked));
        assert!(
            Denial::Revoked.is_unauthenticated()
                && !Denial::Scope(Scope::Read).is_unauthenticated()
        );
    }

    #[test]
    fn uses_are_recorded_at_most_once_a_minute() {
        let t = Timestamp::default();
        assert!(should_record_use(None, t));
        assert!(!should_record_use(Some(t), t + TimeDelta::seconds(59)));
        assert!(should_record_use(Some(t), t + TimeDelta::seconds(60)));
    }

    #[test]
    fn scopes_parse_by_name() {
        assert_eq!(Scope::parse(" Admin ").unwrap(), Scope::Admin);
        assert!(Scope::parse("root").is_err());
    }
}
