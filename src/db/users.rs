use sqlx::PgExecutor;

use super::DbResult;

/// Creates the user if it does not exist yet.
pub async fn ensure(db: impl PgExecutor<'_>, user_id: &str) -> DbResult<()> {
    sqlx::query("INSERT INTO users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Locks the user's row until the transaction ends, so that concurrent changes to what
/// the user holds (its keys) take turns.
pub async fn lock(db: impl PgExecutor<'_>, user_id: &str) -> DbResult<()> {
    sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}
