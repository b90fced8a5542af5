//! Projects and their members.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::DbResult;
use super::access::{reachable, role_join};
use crate::domain::project::{Member, Project, ProjectView};
use crate::domain::{Access, Role};

/// The caller's role in `project`, if it is a member and its key reaches the project.
pub async fn role_of(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    project: Uuid,
) -> DbResult<Option<Role>> {
    const ROLE: &str = concat!(
        "SELECT member.role FROM projects AS p ",
        role_join!("p.project_id", "$2", "$3"),
        " WHERE p.project_id = $1"
    );
    let role = sqlx::query_scalar(ROLE)
        .bind(project)
        .bind(access.user_id)
        .bind(access.projects)
        .fetch_optional(db)
        .await?;
    Ok(role)
}

/// The start of a statement reading `ProjectView`s (`p`, the project, and `member`, the
/// caller's membership, with the user at `$2` and the key's projects at `$3`), ready for its
/// WHERE clause: a literal, so the statements are constants, not strings built per call.
macro_rules! select_views {
    () => {
        concat!(
            "SELECT p.*, member.role,
    (SELECT count(*) FROM physical_samples AS s WHERE s.project_id = p.project_id)
        AS physical_sample_count
    FROM projects AS p ",
            role_join!("p.project_id", "$2", "$3")
        )
    };
}

/// The projects the caller may read, oldest first; only `id` when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    only: Option<Uuid>,
) -> DbResult<Vec<ProjectView>> {
    const LIST: &str = concat!(
        select_views!(),
        " WHERE ($1::uuid IS NULL OR p.project_id = $1) ORDER BY p.created_at, p.project_id"
    );
    let projects = sqlx::query_as(LIST)
        .bind(only)
        .bind(access.user_id)
        .bind(access.projects)
        .fetch_all(db)
        .await?;
    Ok(projects)
}

/// Creates a project with `creator` as its admin. The slug is `slug`, or `slug-2`, `-3` …
/// when the creator has one of that slug already; the caller holds the creator's user row
/// lock (`users::lock`), so two creates cannot pick the same one.
pub async fn insert(
    conn: &mut PgConnection,
    creator: &str,
    name: &str,
    slug: &str,
    description: Option<&str>,
) -> DbResult<Project> {
    let project: Project = sqlx::query_as(
        "INSERT INTO projects (project_id, name, slug, description, created_by)
         SELECT $1, $2, candidate, $4, $5
         FROM (SELECT n, CASE WHEN n = 1 THEN $3 ELSE $3 || '-' || n END AS candidate
               FROM generate_series(1, 100000) AS n) AS candidates
         WHERE NOT EXISTS (SELECT 1 FROM projects WHERE created_by = $5 AND slug = candidate)
         ORDER BY n LIMIT 1
         RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(slug)
    .bind(description)
    .bind(creator)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO project_members (user_id, project_id, role) VALUES ($1, $2, 'admin')")
        .bind(creator)
        .bind(project.project_id)
        .execute(&mut *conn)
        .await?;
    Ok(project)
}

/// Renames or re-describes the project if the caller is its admin; `None` if not.
pub async fn update(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    project: Uuid,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> DbResult<Option<Project>> {
    const UPDATE: &str = concat!(
        "UPDATE projects SET name = COALESCE($2, name),
                description = CASE WHEN $3 THEN $4 ELSE description END,
                modified_at = now()
         WHERE project_id = $1 AND ",
        reachable!("project_id", "$5", "'admin'", "$6"),
        " RETURNING *"
    );
    let updated = sqlx::query_as(UPDATE)
        .bind(project)
        .bind(name)
        .bind(description.is_some())
        .bind(description.flatten())
        .bind(access.user_id)
        .bind(access.projects)
        .fetch_optional(db)
        .await?;
    Ok(updated)
}

/// How many entries and samples the project holds.
pub async fn contents(db: impl PgExecutor<'_>, project: Uuid) -> DbResult<(i64, i64)> {
    let counts = sqlx::query_as(
        "SELECT (SELECT count(*) FROM data_entries WHERE project_id = $1),
                (SELECT count(*) FROM physical_samples WHERE project_id = $1)",
    )
    .bind(project)
    .fetch_one(db)
    .await?;
    Ok(counts)
}

/// Deletes the project and everything in it, writing a `delete` history row for each
/// entry (as deleting it alone would). The caller has checked it is the project's admin.
pub async fn delete(
    conn: &mut PgConnection,
    project: Uuid,
    actor_user_id: &str,
    actor_key_id: Uuid,
    request_id: Option<&str>,
) -> DbResult<()> {
    const DELETE_ENTRIES: &str = "WITH gone AS (
            DELETE FROM data_entries WHERE project_id = $1 RETURNING *
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, project_id, revision, operation,
                                            changed_at, actor_user_id, actor_key_id, request_id,
                                            changes)
            SELECT data_id, user_id, project_id, revision + 1, 'delete',
                   greatest(now(), last_updated + interval '1 microsecond'), $2, $3, $4,
                   data_entry_changes(to_jsonb(gone), NULL)
            FROM gone
        )
        SELECT count(*) FROM gone";
    sqlx::query(DELETE_ENTRIES)
        .bind(project)
        .bind(actor_user_id)
        .bind(actor_key_id)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM physical_samples WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM projects WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Locks the project's row until the transaction ends, so membership changes take turns
/// (the last-admin rule counts admins).
pub async fn lock(db: impl PgExecutor<'_>, project: Uuid) -> DbResult<()> {
    sqlx::query("SELECT 1 FROM projects WHERE project_id = $1 FOR UPDATE")
        .bind(project)
        .execute(db)
        .await?;
    Ok(())
}

/// The project's members, by user id.
pub async fn members(db: impl PgExecutor<'_>, project: Uuid) -> DbResult<Vec<Member>> {
    let members = sqlx::query_as(
        "SELECT user_id, role, execute FROM project_members WHERE project_id = $1
         ORDER BY user_id",
    )
    .bind(project)
    .fetch_all(db)
    .await?;
    Ok(members)
}

/// Gives `user` `role` in the project (adding it, or changing its role); `execute` when
/// given. Returns the membership as it now is.
pub async fn put_member(
    db: impl PgExecutor<'_>,
    project: Uuid,
    user: &str,
    role: Role,
    execute: Option<bool>,
) -> DbResult<Member> {
    let member = sqlx::query_as(
        "INSERT INTO project_members (user_id, project_id, role, execute)
         VALUES ($1, $2, $3, COALESCE($4, false))
         ON CONFLICT (user_id, project_id)
         DO UPDATE SET role = EXCLUDED.role,
                       execute = COALESCE($4, project_members.execute)
         RETURNING user_id, role, execute",
    )
    .bind(user)
    .bind(project)
    .bind(role)
    .bind(execute)
    .fetch_one(db)
    .await?;
    Ok(member)
}

/// Removes `user` from the project; `false` if it was no member.
pub async fn remove_member(db: impl PgExecutor<'_>, project: Uuid, user: &str) -> DbResult<bool> {
    let removed = sqlx::query("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2")
        .bind(project)
        .bind(user)
        .execute(db)
        .await?;
    Ok(removed.rows_affected() == 1)
}

/// The names of those of `projects` the caller may read.
pub async fn names(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    projects: &[Uuid],
) -> DbResult<Vec<(Uuid, String)>> {
    const NAMES: &str = concat!(
        "SELECT project_id, name FROM projects WHERE project_id = ANY($1) AND ",
        reachable!("project_id", "$2", "'viewer'", "$3")
    );
    let names = sqlx::query_as(NAMES)
        .bind(projects)
        .bind(access.user_id)
        .bind(access.projects)
        .fetch_all(db)
        .await?;
    Ok(names)
}

/// The project the caller may read whose `/v2` id is `owner/slug`, if any.
pub async fn by_path(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    owner: &str,
    slug: &str,
) -> DbResult<Option<ProjectView>> {
    const BY_PATH: &str = concat!(select_views!(), " WHERE p.created_by = $1 AND p.slug = $4");
    let project = sqlx::query_as(BY_PATH)
        .bind(owner)
        .bind(access.user_id)
        .bind(access.projects)
        .bind(slug)
        .fetch_optional(db)
        .await?;
    Ok(project)
}

/// The `/v2` ids (`created_by/slug`) of those of `projects` the caller may read.
pub async fn paths(
    db: impl PgExecutor<'_>,
    access: Access<'_>,
    projects: &[Uuid],
) -> DbResult<std::collections::HashMap<Uuid, String>> {
    const PATHS: &str = concat!(
        "SELECT project_id, created_by || '/' || slug FROM projects
         WHERE project_id = ANY($1) AND ",
        reachable!("project_id", "$2", "'viewer'", "$3")
    );
    let rows: Vec<(Uuid, String)> = sqlx::query_as(PATHS)
        .bind(projects)
        .bind(access.user_id)
        .bind(access.projects)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().collect())
}
