use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::DbResult;
use super::access::reachable;
use crate::domain::{Access, PhysicalSample, Role};

/// What became of an insert.
pub enum Inserted {
    Created(PhysicalSample),
    /// The project already has a sample of this name (case-insensitive, trimmed): its id.
    Duplicate(Uuid),
    /// The caller may not create samples in the project.
    NotPermitted,
}

/// Inserts the sample into `project` (the caller's personal project when `None`) if the
/// caller may create samples there, with its `sample.created` event; `key_id` is the
/// caller's key.
pub async fn insert(
    pool: &PgPool,
    access: Access<'_>,
    key_id: Uuid,
    project: Option<Uuid>,
    name: &str,
) -> DbResult<Inserted> {
    const INSERT: &str = concat!(
        "WITH created AS (
            INSERT INTO physical_samples (physical_sample_id, user_id, name, project_id)
            SELECT $1, $2, $3, target.project_id
            FROM (SELECT COALESCE($4::uuid, (SELECT project_id FROM projects
                                             WHERE created_by = $2 AND personal)) AS project_id)
                 AS target
            WHERE ",
        reachable!("target.project_id", "$2", "$5", "$6"),
        "   ON CONFLICT (project_id, lower(btrim(name))) DO NOTHING
            RETURNING physical_sample_id, name, user_id, project_id, created_at
        ), announced AS (
            INSERT INTO events (type, project_id, occurred_at, actor_user_id, actor_key_id,
                                changes)
            SELECT 'sample.created', project_id, created_at, user_id, $7,
                   jsonb_build_object('physical_sample_id', physical_sample_id, 'name', name)
            FROM created
        )
        SELECT * FROM created"
    );
    let inserted: Option<PhysicalSample> = sqlx::query_as(INSERT)
        .bind(Uuid::now_v7())
        .bind(access.user_id)
        .bind(name)
        .bind(project)
        .bind(Role::Editor)
        .bind(access.projects)
        .bind(key_id)
        .fetch_optional(pool)
        .await?;
    if let Some(sample) = inserted {
        return Ok(Inserted::Created(sample));
    }
    const EXISTING: &str = concat!(
        "SELECT physical_sample_id FROM physical_samples
         WHERE project_id = COALESCE($1::uuid, (SELECT project_id FROM projects
                                                WHERE created_by = $3 AND personal))
           AND lower(btrim(name)) = lower(btrim($2)) AND ",
        reachable!("project_id", "$3", "$4", "$5")
    );
    let existing: Option<Uuid> = sqlx::query_scalar(EXISTING)
        .bind(project)
        .bind(name)
        .bind(access.user_id)
        .bind(Role::Editor)
        .bind(access.projects)
        .fetch_optional(pool)
        .await?;
    Ok(existing.map_or(Inserted::NotPermitted, Inserted::Duplicate))
}

/// Which samples a list asks for; every field narrows it.
#[derive(Default)]
pub struct SampleQuery<'a> {
    pub only: Option<Uuid>,
    pub name: Option<&'a str>,
    pub project: Option<Uuid>,
}

/// The samples the caller may read that `filter` asks for, oldest first.
pub async fn list(
    pool: &PgPool,
    access: Access<'_>,
    filter: &SampleQuery<'_>,
) -> DbResult<Vec<PhysicalSample>> {
    const LIST: &str = concat!(
        "SELECT physical_sample_id, name, user_id, project_id, created_at FROM physical_samples
         WHERE ",
        reachable!("project_id", "$1", "'viewer'", "$4"),
        " AND ($2::uuid IS NULL OR physical_sample_id = $2)
           AND ($3::text IS NULL OR lower(btrim(name)) = lower(btrim($3)))
           AND ($5::uuid IS NULL OR project_id = $5)
         ORDER BY created_at, physical_sample_id"
    );
    let samples = sqlx::query_as(LIST)
        .bind(access.user_id)
        .bind(filter.only)
        .bind(filter.name)
        .bind(access.projects)
        .bind(filter.project)
        .fetch_all(pool)
        .await?;
    Ok(samples)
}

/// The sample, if the caller may read it.
pub async fn get(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    id: Uuid,
) -> DbResult<Option<PhysicalSample>> {
    const GET: &str = concat!(
        "SELECT physical_sample_id, name, user_id, project_id, created_at FROM physical_samples
         WHERE physical_sample_id = $2 AND ",
        reachable!("project_id", "$1", "'viewer'", "$3")
    );
    let sample = sqlx::query_as(GET)
        .bind(access.user_id)
        .bind(id)
        .bind(access.projects)
        .fetch_optional(db)
        .await?;
    Ok(sample)
}
