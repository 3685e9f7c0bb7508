//! API tokens in table `tokens` (`docs/security.md`): inserted, listed, revoked, found by the
//! SHA-256 of their text, and their last use noted. Each is one statement.

use crate::error::PgError;
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use pgqueue_domain::Timestamp;
use pgqueue_domain::auth::{Grant, Namespaces, Scope};
use pgqueue_ports::{StoreError, StoreResult, TokenRecord, TokenStore};

/// The columns every statement answers.
const COLUMNS: &str = "id, name, hash, namespaces, scopes, created_at, expires_at, revoked_at, \
                       last_used_at, now() AS now";

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
    #[diesel(sql_type = Array<Text>)]
    namespaces: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    scopes: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    revoked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_used_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

impl TokenRow {
    fn into_record(self) -> Result<(TokenRecord, Timestamp), PgError> {
        let corrupt = |what: &str| {
            PgError::Store(StoreError::Unavailable(
                format!("token {} has an invalid {what}", self.id).into(),
            ))
        };
        let names: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        let namespaces = Namespaces::parse(&names).map_err(|_| corrupt("namespace"))?;
        let scopes = self
            .scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("scope"))?;
        Ok((
            TokenRecord {
                id: self.id,
                name: self.name.clone(),
                hash: self.hash.clone(),
                grant: Grant {
                    namespaces,
                    scopes,
                    expires_at: self.expires_at,
                    revoked_at: self.revoked_at,
                },
                created_at: self.created_at,
                last_used_at: self.last_used_at,
            },
            self.now,
        ))
    }
}

fn records(rows: Vec<TokenRow>) -> Result<Vec<TokenRecord>, PgError> {
    rows.into_iter()
        .map(|r| r.into_record().map(|(t, _)| t))
        .collect()
}

fn one(rows: Vec<TokenRow>, id: i64) -> Result<TokenRecord, PgError> {
    records(rows)?
        .pop()
        .ok_or_else(|| PgError::Store(StoreError::not_found("token", id)))
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert_token(
        &self,
        name: Option<String>,
        hash: &[u8; 32],
        grant: &Grant,
    ) -> StoreResult<TokenRecord> {
        let namespaces = grant.namespaces.names();
        let scopes: Vec<&str> = grant.scopes.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "INSERT INTO tokens (name, hash, namespaces, scopes, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        self.with_conn(async |c| {
            let rows: Vec<TokenRow> = diesel::sql_query(&sql)
                .bind::<Nullable<Text>, _>(name)
                .bind::<Bytea, _>(hash.as_slice())
                .bind::<Array<Text>, _>(&namespaces)
                .bind::<Array<Text>, _>(&scopes)
                .bind::<Nullable<Timestamptz>, _>(grant.expires_at)
                .load(c)
                .await?;
            one(rows, 0)
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens ORDER BY id");
        self.with_conn(async |c| {
            let rows: Vec<TokenRow> = diesel::sql_query(&sql).load(c).await?;
            records(rows)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<TokenRecord> {
        let sql = format!(
            "UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
             RETURNING {COLUMNS}"
        );
        self.with_conn(async |c| {
            let rows: Vec<TokenRow> = diesel::sql_query(&sql)
                .bind::<BigInt, _>(id)
                .load(c)
                .await?;
            one(rows, id)
        })
        .await
    }

    async fn find_token(&self, hash: &[u8; 32]) -> StoreResult<Option<(TokenRecord, Timestamp)>> {
        let sql = format!("SELECT {COLUMNS} FROM tokens WHERE hash = $1");
        self.with_conn(async |c| {
            let rows: Vec<TokenRow> = diesel::sql_query(&sql)
                .bind::<Bytea, _>(hash.as_slice())
                .load(c)
                .await?;
            rows.into_iter()
                .next()
                .map(TokenRow::into_record)
                .transpose()
        })
        .await
    }

    async fn record_token_use(&self, id: i64) -> StoreResult<()> {
        self.with_conn(async |c| {
            diesel::sql_query("UPDATE tokens SET last_used_at = now() WHERE id = $1")
                .bind::<BigInt, _>(id)
                .execute(c)
                .await?;
            Ok(())
        })
        .await
    }
}
