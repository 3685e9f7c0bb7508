//! The commands that talk to the database directly, needing no server and no token (whoever
//! can reach the database is already trusted with it): `pgqueue token create|list|revoke`
//! (API tokens) and `pgqueue migrate [--status]`.

use crate::cli::TokenCommand;
use crate::error::CliError;
use pgqueue_domain::auth::{Grant, Namespaces, Scope};
use pgqueue_ports::{TokenRecord, TokenStore};
use pgqueue_postgres::{PgOptions, PgStore};
use serde_json::{Value, json};

/// The URL given, else `DATABASE_URL` (clap already read it).
fn database(url: Option<String>) -> Result<String, CliError> {
    url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        CliError::Usage("this command needs the database URL (an argument or DATABASE_URL)".into())
    })
}

async fn connect(url: &str) -> Result<PgStore, CliError> {
    Ok(PgStore::connect(url, PgOptions::default()).await?)
}

/// A token as `token list` shows it: never its text or hash.
fn shown(t: &TokenRecord) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "namespaces": t.grant.namespaces.names(),
        "scopes": t.grant.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": t.created_at,
        "expires_at": t.grant.expires_at,
        "revoked_at": t.grant.revoked_at,
        "last_used_at": t.last_used_at,
    })
}

/// Runs one token command.
pub async fn tokens(command: TokenCommand, namespaces: &[String]) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            url,
            scopes,
            expires,
            name,
        } => {
            let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
            let grant = Grant {
                namespaces: Namespaces::parse(&names).map_err(pgqueue_app::Error::from)?,
                scopes: scopes
                    .iter()
                    .map(|s| Scope::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(pgqueue_app::Error::from)?,
                expires_at: expires.map(|d| pgqueue_domain::time::add(chrono::Utc::now(), d)),
                revoked_at: None,
            };
            let store = connect(&database(url)?).await?;
            let (token, record) = pgqueue_app::auth::issue(&store, name.as_deref(), &grant).await?;
            let mut out = shown(&record);
            out["token"] = Value::String(token);
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        TokenCommand::List { url } => {
            let store = connect(&database(url)?).await?;
            let tokens = store
                .list_tokens()
                .await
                .map_err(pgqueue_app::Error::from)?;
            let list: Vec<Value> = tokens.iter().map(shown).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"count": list.len(), "body": list}))?
            );
        }
        TokenCommand::Revoke { args } => {
            let (url, id) = match args.as_slice() {
                [id] => (None, id),
                [url, id] => (Some(url.clone()), id),
                _ => return Err(CliError::Usage("expected [URL] ID".into())),
            };
            let id: i64 = id
                .parse()
                .map_err(|_| CliError::Usage(format!("invalid token id {id:?}")))?;
            let url = database(url.or_else(|| std::env::var("DATABASE_URL").ok()))?;
            let store = connect(&url).await?;
            let record = store
                .revoke_token(id)
                .await
                .map_err(pgqueue_app::Error::from)?;
            println!("{}", serde_json::to_string_pretty(&shown(&record))?);
        }
    }
    Ok(())
}

/// `pgqueue migrate [URL] [--status]`: applies the pending migrations (or only shows them),
/// one line per migration, `applied NAME` or `pending NAME`.
pub async fn migrate(
    url: Option<String>,
    status_only: bool,
    schema: Option<String>,
) -> Result<(), CliError> {
    let url = database(url)?;
    let options = PgOptions {
        schema,
        ..Default::default()
    };
    let states = if status_only {
        PgStore::migration_status(&url, &options).await?
    } else {
        PgStore::migrate(&url, &options).await?
    };
    for m in states {
        println!(
            "{} {}",
            if m.applied { "applied" } else { "pending" },
            m.name
        );
    }
    Ok(())
}
