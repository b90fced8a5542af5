//! Sessions of the web UI: a hashed token bound to the API key it was signed in with.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::DbResult;
use super::api_keys::ActiveKey;

/// The key's columns, then the session's end.
type SessionRow = (
    Uuid,
    String,
    Vec<String>,
    Option<DateTime<Utc>>,
    Option<Vec<Uuid>>,
    DateTime<Utc>,
);

/// A session's key, if the session has not expired and its key is neither revoked nor
/// expired; and when the session ends.
pub async fn find_active(
    pool: &PgPool,
    session_hash: &[u8],
) -> DbResult<Option<(ActiveKey, DateTime<Utc>)>> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT k.key_id, k.user_id, k.scopes, k.expires_at, k.projects, s.expires_at
             FROM ui_sessions s JOIN api_keys k ON k.key_id = s.key_id
             WHERE s.session_hash = $1 AND s.expires_at > now()
               AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())",
    )
    .bind(session_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(key_id, user_id, scopes, expires_at, projects, session_expires_at)| {
            (
                ActiveKey {
                    key_id,
                    user_id,
                    scopes,
                    expires_at,
                    projects,
                },
                session_expires_at,
            )
        },
    ))
}

/// Starts a session (and forgets sessions that have expired, so the table stays small).
pub async fn insert(
    pool: &PgPool,
    session_hash: &[u8],
    key_id: Uuid,
    expires_at: DateTime<Utc>,
) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= now()")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO ui_sessions (session_hash, key_id, expires_at) VALUES ($1, $2, $3)")
        .bind(session_hash)
        .bind(key_id)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends a session; `false` when there was none.
pub async fn delete(pool: &PgPool, session_hash: &[u8]) -> DbResult<bool> {
    let result = sqlx::query("DELETE FROM ui_sessions WHERE session_hash = $1")
        .bind(session_hash)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}
