//! Issuing keys: the one path the CLI, the HTTP route, the first start and the tests use.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::ApiKeySecret;
use crate::db::{self, DbError, DbResult, api_keys::KeyRecord};
use crate::domain::Scope;

/// Why no key was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(
        "the user already has {limit} active keys, the most allowed \
         (auth.max_active_keys_per_user); revoke one first"
    )]
    TooManyKeys { limit: u32 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Creates the user if new, then a key for it, with no bound on how many the user holds
/// (the first start, and tests). The secret is returned once, here, and only its hash is
/// stored.
pub async fn issue_key(
    pool: &PgPool,
    user_id: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> DbResult<(ApiKeySecret, KeyRecord)> {
    match issue(pool, user_id, name, scopes, expires_at, None, None).await {
        Ok(issued) => Ok(issued),
        Err(IssueError::Db(error)) => Err(error),
        Err(IssueError::TooManyKeys { .. }) => unreachable!("no bound was given"),
    }
}

/// Like `issue_key`, unless the user already holds `max_active` keys that are neither
/// revoked nor expired. Concurrent calls for one user take turns, so the bound holds.
pub async fn issue_key_within(
    pool: &PgPool,
    user_id: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    projects: Option<&[Uuid]>,
    max_active: u32,
) -> Result<(ApiKeySecret, KeyRecord), IssueError> {
    issue(
        pool,
        user_id,
        name,
        scopes,
        expires_at,
        projects,
        Some(max_active),
    )
    .await
}

async fn issue(
    pool: &PgPool,
    user_id: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    projects: Option<&[Uuid]>,
    max_active: Option<u32>,
) -> Result<(ApiKeySecret, KeyRecord), IssueError> {
    let secret = ApiKeySecret::generate();
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let mut transaction = pool.begin().await.map_err(DbError::from)?;
    db::users::ensure(&mut *transaction, user_id).await?;
    if let Some(limit) = max_active {
        db::users::lock(&mut *transaction, user_id).await?;
        let active = db::api_keys::count_active(&mut *transaction, user_id).await?;
        if active >= i64::from(limit) {
            return Err(IssueError::TooManyKeys { limit });
        }
    }
    let record = db::api_keys::insert(
        &mut *transaction,
        &db::api_keys::NewKey {
            key_id: Uuid::now_v7(),
            user_id,
            prefix: secret.display_prefix(),
            key_hash: secret.hash().as_bytes(),
            name,
            scopes: &scopes,
            expires_at,
            projects,
        },
    )
    .await?;
    transaction.commit().await.map_err(DbError::from)?;
    Ok((secret, record))
}
