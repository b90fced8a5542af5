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
