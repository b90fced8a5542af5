//! `labcat keys create|list|revoke`. `create` prints the secret alone on stdout (so it can
//! be captured) and the details on stderr.

use chrono::{Duration, Utc};
use clap::Subcommand;
use uuid::Uuid;

use super::database::Database;
use crate::auth::issue_key_within;
use crate::config::Settings;
use crate::db;
use crate::domain::Scope;
use crate::domain::api_key::valid_user_id;
use crate::domain::timestamp;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key (and the user, if new). Prints the secret once.
    Create {
        #[arg(long)]
        user: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Lifetime such as 90d, 12h, 30m or 2w; no expiry when absent.
        #[arg(long)]
        expires_in: Option<String>,
        /// Limit the key to this project (repeatable); all of the user's when absent.
        #[arg(long = "project")]
        projects: Vec<Uuid>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by its id.
    Revoke { id: Uuid },
}

pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    // Validate before touching the database.
    let create = match &command {
        KeysCommand::Create {
            user,
            scopes,
            expires_in,
            ..
        } => {
            anyhow::ensure!(
                valid_user_id(user),
                "--user must be 1-128 characters of letters, digits, '_', '.', '@' or '-'"
            );
            let scopes = Scope::parse_list(scopes).map_err(anyhow::Error::msg)?;
            let lifetime = expires_in.as_deref().map(parse_lifetime).transpose()?;
            Some((scopes, lifetime))
        }
        _ => None,
    };
    let database = Database::open(settings).await?;
    let max_active = settings.auth.max_active_keys_per_user;
    let result = execute(&database, command, create, max_active).await;
    database.close().await;
    result
}

async fn execute(
    database: &Database,
    command: KeysCommand,
    create: Option<(Vec<Scope>, Option<Duration>)>,
    max_active: u32,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            user,
            name,
            projects,
            ..
        } => {
            let (scopes, lifetime) = create.expect("validated above");
            let expires_at = lifetime.map(|lifetime| Utc::now() + lifetime);
            let projects = (!projects.is_empty()).then_some(projects.as_slice());
            let (secret, record) = issue_key_within(
                &database.pool,
                &user,
                &name,
                &scopes,
                expires_at,
                projects,
                max_active,
            )
            .await
            .map_err(|error| anyhow::anyhow!("cannot create a key for user {user}: {error}"))?;
            println!("{}", secret.expose());
            eprintln!(
                "created key {} ({}) for user {} with scopes {}{}",
                record.key_id,
                record.prefix,
                record.user_id,
                record.scopes.join(","),
                record
                    .expires_at
                    .map(|at| format!(", expires {}", timestamp::format(&at)))
                    .unwrap_or_default()
            );
        }
        KeysCommand::List { user } => {
            let keys = db::api_keys::list(&database.pool, user.as_deref()).await?;
            println!("ID\tPREFIX\tUSER\tSCOPES\tNAME\tCREATED\tEXPIRES\tSTATUS");
            for key in keys {
                let status = if key.revoked_at.is_some() {
                    "revoked"
                } else if key.expires_at.is_some_and(|at| at <= Utc::now()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    key.key_id,
                    key.prefix,
                    key.user_id,
                    key.scopes.join(","),
                    key.name,
                    timestamp::format(&key.created_at),
                    key.expires_at
                        .map(|at| timestamp::format(&at))
                        .unwrap_or_else(|| "-".into()),
                    status
                );
            }
        }
        KeysCommand::Revoke { id } => {
            anyhow::ensure!(
                db::api_keys::revoke(&database.pool, id).await?,
                "no active key with id {id}"
            );
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}

/// `90d`, `12h`, `30m`, `45s`, `2w`.
fn parse_lifetime(text: &str) -> anyhow::Result<Duration> {
    let invalid = || anyhow::anyhow!("--expires-in must look like 90d, 12h, 30m, 45s or 2w");
    let unit = text.chars().last().ok_or_else(invalid)?;
    let amount: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    anyhow::ensure!(amount > 0, "--expires-in must be positive");
    let lifetime = match unit {
        's' => Duration::try_seconds(amount),
        'm' => Duration::try_minutes(amount),
        'h' => Duration::try_hours(amount),
        'd' => Duration::try_days(amount),
        'w' => Duration::try_weeks(amount),
        _ => None,
    };
    lifetime.ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_in_the_documented_units() {
        assert_eq!(parse_lifetime("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_lifetime("12h").unwrap(), Duration::hours(12));
        assert!(parse_lifetime("12").is_err());
        assert!(parse_lifetime("-1d").is_err());
        assert!(parse_lifetime("d").is_err());
    }
}
