//! API tokens (`docs/security.md`): issuing one, and checking a request's bearer token
//! against the domain's [`Grant::allows`].
//!
//! A token is `pgq_` and 64 hex digits of a 256-bit secret from the operating system's
//! random source; only its SHA-256 is stored, so the table leaks nothing usable. Looking a
//! token up by its hash and comparing the hashes in constant time leaves nothing to time.
//! Answers are cached for [`CACHE_TTL`] per token, which bounds both the database load of a
//! busy worker and how long a revoked token keeps working on a server (the spec allows 5 s).

use crate::error::{Error, Result};
use pgqueue_domain::auth::{Denial, Grant, Scope, should_record_use};
use pgqueue_domain::{Namespace, Timestamp};
use pgqueue_ports::{StoreError, TokenRecord, TokenStore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How long a looked-up token is trusted before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// The prefix of every token, so that secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "pgq_";

/// The most tokens a server remembers answers for (unknown ones included), so that a
/// caller sending random tokens cannot grow its memory.
const CACHE_MAX: usize = 10_000;

/// The SHA-256 of a token as given.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new token's text: `pgq_` and 64 hex digits of OS randomness.
fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::from(StoreError::Unavailable(
            format!("no randomness for a token: {e}").into(),
        ))
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

/// Creates a token: stores its hash and grant, and answers the token's text (shown once,
/// never stored) with its record.
pub async fn issue(
    tokens: &dyn TokenStore,
    name: Option<&str>,
    grant: &Grant,
) -> Result<(String, TokenRecord)> {
    let secret = new_secret()?;
    let record = tokens
        .insert_token(name.map(str::to_string), &token_hash(&secret), grant)
        .await?;
    Ok((secret, record))
}

#[derive(Clone)]
struct Cached {
    at: Instant,
    /// The token and the store's time when it was read; `None`: no such token.
    found: Option<(TokenRecord, Timestamp)>,
}

/// Checks bearer tokens for a server, with a short cache.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<dyn TokenStore>,
    cache: Arc<Mutex<HashMap<[u8; 32], Cached>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator reading tokens from `tokens`.
    pub fn new(tokens: Arc<dyn TokenStore>) -> Self {
        Self {
            tokens,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether `bearer` (the `Authorization: Bearer` value; none when absent) may use `scope`
    /// in `ns`. Storage failures are errors, not denials: the caller answers 503.
    pub async fn check(
        &self,
        bearer: Option<&str>,
        ns: &Namespace,
        scope: Scope,
    ) -> Result<std::result::Result<(), Denial>> {
        let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Err(Denial::Unknown));
        };
        let hash = token_hash(token);
        let cached = self.lookup(&hash).await?;
        let Some((record, read_at)) = cached.found else {
            return Ok(Err(Denial::Unknown));
        };
        // The store's clock when read, moved on by the time the answer has been cached.
        let now = read_at
            + chrono::TimeDelta::from_std(cached.at.elapsed()).unwrap_or(chrono::TimeDelta::MAX);
        if !bool::from(record.hash.as_slice().ct_eq(&hash)) {
            return Ok(Err(Denial::Unknown));
        }
        let verdict = record.grant.allows(ns, scope, now);
        if verdict.is_ok() && should_record_use(record.last_used_at, now) {
            self.record_use(&hash, &record, now);
        }
        Ok(verdict)
    }

    /// The cached answer for `hash`, or a fresh one.
    async fn lookup(&self, hash: &[u8; 32]) -> Result<Cached> {
        if let Some(c) = self.cache_get(hash)
            && c.at.elapsed() < CACHE_TTL
        {
            return Ok(c);
        }
        let found = self.tokens.find_token(hash).await?;
        let fresh = Cached {
            at: Instant::now(),
            found,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, c| c.at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(*hash, fresh.clone());
        Ok(fresh)
    }

    fn cache_get(&self, hash: &[u8; 32]) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(hash).cloned()
    }

    /// Writes the use in the background (a request never waits for it) and marks it in the
    /// cache so the next requests do not write again.
    fn record_use(&self, hash: &[u8; 32], record: &TokenRecord, now: Timestamp) {
        {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(Cached {
                found: Some((r, _)),
                ..
            }) = cache.get_mut(hash)
            {
                r.last_used_at = Some(now);
            }
        }
        let tokens = self.tokens.clone();
        let id = record.id;
        tokio::spawn(async move {
            if let Err(e) = tokens.record_token_use(id).await {
                tracing::warn!(error = %e, token = id, "recording a token's use failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hashed_with_sha256() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
        // SHA-256 of "abc".
        assert_eq!(
            token_hash("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "the standard test vector"
        );
    }
}
