//! Names of queues, tickers and namespaces.
//!
//! A name is trimmed and lower-cased, then must match `^[a-z][a-z0-9_-]{0,63}$`. The newtypes
//! can only be built through `parse`, so an invalid name cannot exist past the edge of the
//! system, and every interface (Rust, HTTP path segments, CLI) normalises the same way.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The longest name accepted, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Normalises `raw` and checks it against the name grammar; `kind` names the field in errors.
fn normalise(kind: &'static str, raw: &str) -> Result<String> {
    // ASCII lower-casing: a valid name is ASCII, and Unicode lower-casing would let a few
    // non-ASCII letters in (the Kelvin sign lower-cases to `k`).
    let name = raw.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(Error::MissingName(kind));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidName {
            kind,
            value: raw.to_string(),
        });
    }
    Ok(name)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Normalises and validates a name given by a user.
            pub fn parse(raw: &str) -> Result<Self> {
                normalise($kind, raw).map(Self)
            }

            /// The normalised name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name of a queue within a namespace.
    QueueName,
    "queue"
);
name_type!(
    /// The name of a ticker within a namespace. `next` is refused: it would hide the SSE route.
    TickerName,
    "ticker"
);
name_type!(
    /// A tenant. Operations never see another namespace's data.
    Namespace,
    "namespace"
);

impl TickerName {
    /// Like [`TickerName::parse`], but also refuses `next`, which the HTTP API routes to the
    /// SSE stream of matured tickers.
    pub fn parse_user(raw: &str) -> Result<Self> {
        let name = Self::parse(raw)?;
        if name.0 == "next" {
            return Err(Error::InvalidName {
                kind: "ticker",
                value: raw.to_string(),
            });
        }
        Ok(name)
    }
}

/// The namespace used when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The namespace reserved for pgqueue itself (the clean-up ticker lives there).
pub const SYSTEM_NAMESPACE: &str = "pgqueue";

impl Namespace {
    /// Parses a namespace for an application: like `parse`, and refuses the reserved one.
    pub fn parse_application(raw: &str) -> Result<Self> {
        let ns = Self::parse(raw)?;
        if ns.is_system() {
            return Err(Error::ReservedNamespace(ns.0));
        }
        Ok(ns)
    }

    /// The system namespace, `pgqueue`.
    pub fn system() -> Self {
        Self(SYSTEM_NAMESPACE.to_string())
    }

    /// Whether this is the system namespace.
    pub fn is_system(&self) -> bool {
        self.0 == SYSTEM_NAMESPACE
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self(DEFAULT_NAMESPACE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_lower_cased() {
        assert_eq!(QueueName::parse(" My-Queue ").unwrap().as_str(), "my-queue");
        assert_eq!(QueueName::parse("a").unwrap().as_str(), "a");
        assert_eq!(QueueName::parse("a_b-9").unwrap().as_str(), "a_b-9");
    }

    #[test]
    fn invalid_names_are_refused_with_the_problem_named() {
        assert_eq!(
            QueueName::parse("invalid queue!").unwrap_err().to_string(),
            "invalid queue name: \"invalid queue!\""
        );
        assert_eq!(
            QueueName::parse("").unwrap_err().to_string(),
            "missing queue name"
        );
        assert_eq!(
            QueueName::parse("   ").unwrap_err().to_string(),
            "missing queue name"
        );
        assert!(QueueName::parse("9lives").is_err());
        assert!(QueueName::parse("-x").is_err());
        assert!(QueueName::parse("é").is_err());
        assert!(
            QueueName::parse("\u{212a}elvin").is_err(),
            "the Kelvin sign is not k"
        );
        assert_eq!(
            TickerName::parse("").unwrap_err().to_string(),
            "missing ticker name"
        );
    }

    #[test]
    fn names_are_at_most_64_characters() {
        let ok = format!("a{}", "b".repeat(63));
        assert!(QueueName::parse(&ok).is_ok());
        let long = format!("a{}", "b".repeat(64));
        assert!(QueueName::parse(&long).is_err());
    }

    #[test]
    fn next_is_not_a_user_ticker_name() {
        assert!(TickerName::parse_user(" Next ").is_err());
        assert_eq!(
            TickerName::parse_user("nextish").unwrap().as_str(),
            "nextish"
        );
    }

    #[test]
    fn the_system_namespace_is_reserved_for_applications() {
        assert_eq!(
            Namespace::parse_application(" PGQUEUE ").unwrap_err(),
            Error::ReservedNamespace("pgqueue".into())
        );
        assert!(Namespace::parse("pgqueue").unwrap().is_system());
        assert_eq!(Namespace::default().as_str(), "default");
    }

    #[test]
    fn names_deserialize_through_parse() {
        let q: QueueName = serde_json::from_str("\" Emails \"").unwrap();
        assert_eq!(q.as_str(), "emails");
        assert!(serde_json::from_str::<QueueName>("\"bad name\"").is_err());
    }
}
