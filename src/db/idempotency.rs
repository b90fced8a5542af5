use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use super::DbResult;

/// What the first request with an idempotency key left behind.
#[derive(Debug)]
pub struct StoredRequest {
    pub fingerprint: Vec<u8>,
    /// `None` while that first request is still being handled.
    pub status: Option<i16>,
    pub headers: Option<Value>,
    pub body: Option<Vec<u8>>,
}

/// Claims `key` for this request. `None`: claimed, go ahead. `Some`: an earlier request
/// with this key exists (and has not expired).
pub async fn claim(
    pool: &PgPool,
    user_id: &str,
    key: &str,
    fingerprint: &[u8],
    ttl: Duration,
) -> DbResult<Option<StoredRequest>> {
    let ttl_seconds = ttl.as_secs_f64();
    // Forget expired keys first (all of them: the created_at index makes this cheap).
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(ttl_seconds)
    .execute(pool)
    .await?;
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(key)
    .bind(fingerprint)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if claimed {
        return Ok(None);
    }
    let stored = sqlx::query_as(
        "SELECT fingerprint, status, headers, body FROM idempotency_keys
         WHERE user_id = $1 AND idempotency_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(stored)
}

/// Keeps the response of the request that claimed `key`, for replay.
pub async fn complete(
    pool: &PgPool,
    user_id: &str,
    key: &str,
    status: u16,
    headers: &Value,
    body: &[u8],
) -> DbResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5
         WHERE user_id = $1 AND idempotency_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .bind(status as i16)
    .bind(headers)
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Releases `key` when its request failed on the server's side, so a retry can run again.
pub async fn release(pool: &PgPool, user_id: &str, key: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND idempotency_key = $2")
        .bind(user_id)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
