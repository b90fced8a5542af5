//! `server_secrets`: random keys shared by every instance on one database.

use sqlx::PgPool;

use super::DbResult;

/// The secret called `name`: made from `candidate` by the first instance to ask, read back
/// by every other, so all agree.
pub async fn shared(pool: &PgPool, name: &str, candidate: [u8; 32]) -> DbResult<[u8; 32]> {
    let secret: Vec<u8> = sqlx::query_scalar(
        // DO UPDATE (of nothing) rather than DO NOTHING: it returns the stored row even when
        // another instance inserted it a moment ago, in one statement.
        "INSERT INTO server_secrets (name, secret) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING secret",
    )
    .bind(name)
    .bind(candidate.as_slice())
    .fetch_one(pool)
    .await?;
    Ok(secret.try_into().expect("the table holds 32-byte secrets"))
}
