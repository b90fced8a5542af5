//! `Idempotency-Key`s, per API key. A row is claimed by one request, which later stores its
//! answer (`complete`) or gives the key back (`release`); until it expires, every other
//! request with the same key gets the row instead.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::DbResult;

/// Expired rows pruned by one statement, so a backlog never makes one long statement.
const PRUNE_BATCH: i64 = 1000;

/// One request's claim on one key of one API key.
#[derive(Debug, Clone)]
pub struct ClaimRef<'a> {
    pub key_id: Uuid,
    pub idempotency_key: &'a str,
    /// Made by the claiming request; `complete` and `release` touch only its own row.
    pub claim_id: Uuid,
}

/// What an earlier request with the key left behind.
#[derive(Debug)]
pub struct StoredRequest {
    pub fingerprint: Vec<u8>,
    /// `None` while that request is still being handled.
    pub status: Option<i16>,
    pub headers: Option<Value>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum Claimed {
    /// The key is this request's: go ahead.
    Yes,
    /// An earlier request holds it (or its answer), and has not expired.
    Earlier(StoredRequest),
}

struct ClaimRow {
    claimed: bool,
    stored: StoredRequest,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for ClaimRow {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Self {
            claimed: row.try_get("claimed")?,
            stored: StoredRequest::from_row(row)?,
        })
    }
}

/// Claims `claim`'s key for `lease` (the longest the request may run), in one statement:
/// a new key, or one whose row has expired, becomes this request's; otherwise the row is
/// returned as it stands, locked while it is read, so two requests can never both claim.
/// (A conflicting row is rewritten with its own values when not expired: that is what
/// lets one statement return it.)
pub async fn claim(
    pool: &PgPool,
    claim: &ClaimRef<'_>,
    fingerprint: &[u8],
    lease: Duration,
) -> DbResult<Claimed> {
    let row: ClaimRow = sqlx::query_as(
        "INSERT INTO idempotency_keys AS held
             (key_id, idempotency_key, claim_id, fingerprint, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (key_id, idempotency_key) DO UPDATE SET
             claim_id = CASE WHEN held.expires_at <= now()
                             THEN excluded.claim_id ELSE held.claim_id END,
             fingerprint = CASE WHEN held.expires_at <= now()
                                THEN excluded.fingerprint ELSE held.fingerprint END,
             status = CASE WHEN held.expires_at <= now() THEN NULL ELSE held.status END,
             headers = CASE WHEN held.expires_at <= now() THEN NULL ELSE held.headers END,
             body = CASE WHEN held.expires_at <= now() THEN NULL ELSE held.body END,
             expires_at = CASE WHEN held.expires_at <= now()
                               THEN excluded.expires_at ELSE held.expires_at END
         RETURNING claim_id = $3 AS claimed, fingerprint, status, headers, body",
    )
    .bind(claim.key_id)
    .bind(claim.idempotency_key)
    .bind(claim.claim_id)
    .bind(fingerprint)
    .bind(lease.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok(if row.claimed {
        Claimed::Yes
    } else {
        Claimed::Earlier(row.stored)
    })
}

/// Keeps the answer of the request holding `claim`, for replay until `ttl` from now.
pub async fn complete(
    pool: &PgPool,
    claim: &ClaimRef<'_>,
    status: u16,
    headers: &Value,
    body: &[u8],
    ttl: Duration,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys
         SET status = $4, headers = $5, body = $6, expires_at = now() + make_interval(secs => $7)
         WHERE key_id = $1 AND idempotency_key = $2 AND claim_id = $3",
    )
    .bind(claim.key_id)
    .bind(claim.idempotency_key)
    .bind(claim.claim_id)
    .bind(status as i16)
    .bind(headers)
    .bind(body)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives the key back (its request failed on the server's side, or never finished), so a
/// retry runs again.
pub async fn release(pool: &PgPool, claim: &ClaimRef<'_>) -> DbResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE key_id = $1 AND idempotency_key = $2 AND claim_id = $3",
    )
    .bind(claim.key_id)
    .bind(claim.idempotency_key)
    .bind(claim.claim_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes expired rows, a batch per statement; returns how many. Expired rows are already
/// ignored by `claim`: this only keeps the table small.
pub async fn prune_expired(pool: &PgPool) -> DbResult<u64> {
    let mut pruned = 0;
    loop {
        // The outer `expires_at` test is checked again on a row that a claim renewed
        // meanwhile, so a fresh claim is never pruned.
        let deleted = sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE expires_at <= now()
               AND (key_id, idempotency_key) IN (
                   SELECT key_id, idempotency_key FROM idempotency_keys
                   WHERE expires_at <= now() LIMIT $1)",
        )
        .bind(PRUNE_BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        pruned += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(pruned);
        }
    }
}
