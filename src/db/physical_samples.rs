use sqlx::PgPool;
use uuid::Uuid;

use super::DbResult;
use crate::domain::PhysicalSample;

/// Inserts the sample, or returns `Err(existing id)` when the owner already has one with
/// the same name (case-insensitive, trimmed).
pub async fn insert(
    pool: &PgPool,
    owner: &str,
    name: &str,
) -> DbResult<Result<PhysicalSample, Uuid>> {
    let inserted: Option<PhysicalSample> = sqlx::query_as(
        "INSERT INTO physical_samples (physical_sample_id, user_id, name) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, lower(btrim(name))) DO NOTHING
         RETURNING physical_sample_id, name, user_id, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(owner)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    if let Some(sample) = inserted {
        return Ok(Ok(sample));
    }
    let existing: Uuid = sqlx::query_scalar(
        "SELECT physical_sample_id FROM physical_samples
         WHERE user_id = $1 AND lower(btrim(name)) = lower(btrim($2))",
    )
    .bind(owner)
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(Err(existing))
}

pub async fn list(
    pool: &PgPool,
    owner: &str,
    only: Option<Uuid>,
    name: Option<&str>,
) -> DbResult<Vec<PhysicalSample>> {
    let samples = sqlx::query_as(
        "SELECT physical_sample_id, name, user_id, created_at FROM physical_samples
         WHERE user_id = $1
           AND ($2::uuid IS NULL OR physical_sample_id = $2)
           AND ($3::text IS NULL OR lower(btrim(name)) = lower(btrim($3)))
         ORDER BY created_at, physical_sample_id",
    )
    .bind(owner)
    .bind(only)
    .bind(name)
    .fetch_all(pool)
    .await?;
    Ok(samples)
}

pub async fn get(
    db: impl sqlx::PgExecutor<'_>,
    owner: &str,
    id: Uuid,
) -> DbResult<Option<PhysicalSample>> {
    let sample = sqlx::query_as(
        "SELECT physical_sample_id, name, user_id, created_at FROM physical_samples
         WHERE user_id = $1 AND physical_sample_id = $2",
    )
    .bind(owner)
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(sample)
}
