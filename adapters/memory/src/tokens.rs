//! API tokens in memory, for embedders' tests and the contract suite (a `pgqueue run` without
//! a database has no way to issue tokens from outside, so `--auth` needs PostgreSQL).

use crate::store::MemoryStore;
use async_trait::async_trait;
use pgqueue_domain::Timestamp;
use pgqueue_domain::auth::Grant;
use pgqueue_ports::{StoreError, StoreResult, TokenRecord, TokenStore};
use std::collections::BTreeMap;

/// The tokens, by id.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    by_id: BTreeMap<i64, TokenRecord>,
    last_id: i64,
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_token(
        &self,
        name: Option<String>,
        hash: &[u8; 32],
        grant: &Grant,
    ) -> StoreResult<TokenRecord> {
        let now = self.instant();
        let mut state = self.lock();
        let tokens = &mut state.tokens;
        if tokens.by_id.values().any(|t| t.hash == hash.as_slice()) {
            return Err(StoreError::Conflict("token already exists".into()));
        }
        tokens.last_id += 1;
        let record = TokenRecord {
            id: tokens.last_id,
            name,
            hash: hash.to_vec(),
            grant: grant.clone(),
            created_at: now,
            last_used_at: None,
        };
        tokens.by_id.insert(record.id, record.clone());
        Ok(record)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        Ok(self.lock().tokens.by_id.values().cloned().collect())
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<TokenRecord> {
        let now = self.instant();
        let mut state = self.lock();
        let t = state
            .tokens
            .by_id
            .get_mut(&id)
            .ok_or_else(|| StoreError::not_found("token", id))?;
        t.grant.revoked_at.get_or_insert(now);
        Ok(t.clone())
    }

    async fn find_token(&self, hash: &[u8; 32]) -> StoreResult<Option<(TokenRecord, Timestamp)>> {
        let now = self.instant();
        let state = self.lock();
        Ok(state
            .tokens
            .by_id
            .values()
            .find(|t| t.hash == hash.as_slice())
            .map(|t| (t.clone(), now)))
    }

    async fn record_token_use(&self, id: i64) -> StoreResult<()> {
        let now = self.instant();
        if let Some(t) = self.lock().tokens.by_id.get_mut(&id) {
            t.last_used_at = Some(now);
        }
        Ok(())
    }
}
