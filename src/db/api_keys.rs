use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::DbResult;

/// What a request is allowed to do once its key checked out.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub key_id: Uuid,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The projects the key is limited to; `None` reaches all of its user's.
    pub projects: Option<Vec<Uuid>>,
}

/// A key as lists show it: never the secret, never the hash.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub key_id: Uuid,
    pub user_id: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub projects: Option<Vec<Uuid>>,
}

pub struct NewKey<'a> {
    pub key_id: Uuid,
    pub user_id: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a [u8],
    pub name: &'a str,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
    pub projects: Option<&'a [Uuid]>,
}

pub async fn insert(db: impl PgExecutor<'_>, key: &NewKey<'_>) -> DbResult<KeyRecord> {
    let record = sqlx::query_as(
        "INSERT INTO api_keys (key_id, user_id, prefix, key_hash, name, scopes, expires_at,
                               projects)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING key_id, user_id, prefix, name, scopes, created_at, expires_at, revoked_at,
                   last_used_at, projects",
    )
    .bind(key.key_id)
    .bind(key.user_id)
    .bind(key.prefix)
    .bind(key.key_hash)
    .bind(key.name)
    .bind(key.scopes)
    .bind(key.expires_at)
    .bind(key.projects)
    .fetch_one(db)
    .await?;
    Ok(record)
}

/// The user's keys that are neither revoked nor expired.
pub async fn count_active(db: impl PgExecutor<'_>, user_id: &str) -> DbResult<i64> {
    let count = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys
         WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// The key with this hash, if it is neither revoked nor expired.
pub async fn find_active_by_hash(pool: &PgPool, key_hash: &[u8]) -> DbResult<Option<ActiveKey>> {
    let key = sqlx::query_as(
        "SELECT key_id, user_id, scopes, expires_at, projects FROM api_keys
         WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(key_hash)
    .fetch_optional(pool)
    .await?;
    Ok(key)
}

/// Records use at most once a minute per key, so authentication is not a write per request.
pub async fn touch_last_used(pool: &PgPool, key_id: Uuid) -> DbResult<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(key_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn list(pool: &PgPool, user_id: Option<&str>) -> DbResult<Vec<KeyRecord>> {
    let keys = sqlx::query_as(
        "SELECT key_id, user_id, prefix, name, scopes, created_at, expires_at, revoked_at,
                last_used_at, projects
         FROM api_keys WHERE $1::text IS NULL OR user_id = $1
         ORDER BY user_id, created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(keys)
}

/// Revokes the key; `false` if there is no such key (or it was already revoked).
pub async fn revoke(pool: &PgPool, key_id: Uuid) -> DbResult<bool> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL",
    )
    .bind(key_id)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes the key if it belongs to `owner` (any owner when `None`). Revoking a revoked
/// key again keeps its first revocation time and still counts as found.
pub async fn revoke_owned(pool: &PgPool, key_id: Uuid, owner: Option<&str>) -> DbResult<bool> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
         WHERE key_id = $1 AND ($2::text IS NULL OR user_id = $2)",
    )
    .bind(key_id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn count(pool: &PgPool) -> DbResult<i64> {
    let count = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(pool)
        .await?;
    Ok(count)
}
