//! The token port: where API tokens live (`docs/security.md`). Only a token's SHA-256 is
//! ever stored or asked for; the text is shown once, when it is issued.

use crate::error::StoreResult;
use async_trait::async_trait;
use pgqueue_domain::Timestamp;
use pgqueue_domain::auth::Grant;

/// A stored token: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id, for listing and revoking.
    pub id: i64,
    /// A name to recognise it by.
    pub name: Option<String>,
    /// The SHA-256 of its text.
    pub hash: Vec<u8>,
    /// What it grants, until when.
    pub grant: Grant,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it was last used (written at most once a minute).
    pub last_used_at: Option<Timestamp>,
}

/// Storage of API tokens.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token's hash and grant.
    async fn insert_token(
        &self,
        name: Option<String>,
        hash: &[u8; 32],
        grant: &Grant,
    ) -> StoreResult<TokenRecord>;

    /// Every token, by id, revoked and expired ones included.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revokes a token now (a second revoke keeps the first time). NotFound.
    async fn revoke_token(&self, id: i64) -> StoreResult<TokenRecord>;

    /// The token with this hash, if any, and the store's time of the answer.
    async fn find_token(&self, hash: &[u8; 32]) -> StoreResult<Option<(TokenRecord, Timestamp)>>;

    /// Notes that the token was used now.
    async fn record_token_use(&self, id: i64) -> StoreResult<()>;
}
