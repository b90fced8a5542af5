//! Projects and members: the operations both APIs share. Each decides access through the
//! caller's role in the project (`db::access`), inside the statement or the transaction.

use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db;
use crate::domain::api_key::valid_user_id;
use crate::domain::project::{self, Member, Project, ProjectChange, ProjectView};
use crate::domain::{FieldError, Role};
use crate::error::ApiError;
use crate::telemetry;

pub fn not_found(project: Uuid) -> ApiError {
    ApiError::NotFound {
        what: "project",
        id: project.to_string(),
    }
}

/// The caller's role in `project`, which must be at least `needed`: 404 when the caller
/// cannot see the project at all, 403 when it can but its role is lower.
pub(crate) async fn require_role(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    project: Uuid,
    needed: Role,
) -> Result<Role, ApiError> {
    match db::projects::role_of(conn, principal.access(), project).await? {
        None => Err(not_found(project)),
        Some(role) if role < needed => Err(ApiError::RoleTooLow(needed)),
        Some(role) => Ok(role),
    }
}

pub async fn create(
    pool: &PgPool,
    principal: &Principal,
    change: &ProjectChange,
) -> Result<ProjectView, ApiError> {
    if principal.projects.is_some() {
        return Err(ApiError::KeyLimitedToProjects);
    }
    let name = change.name.as_deref().expect("a create names the project");
    let mut tx = pool.begin().await?;
    db::users::lock(&mut *tx, &principal.user_id).await?;
    let project = db::projects::insert(
        &mut tx,
        &principal.user_id,
        name,
        &project::slug(name),
        change.description.clone().flatten().as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(ProjectView {
        project,
        role: Role::Admin,
        physical_sample_count: 0,
    })
}

pub async fn list(pool: &PgPool, principal: &Principal) -> Result<Vec<ProjectView>, ApiError> {
    Ok(db::projects::list(pool, principal.access(), None).await?)
}

pub async fn get(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
) -> Result<ProjectView, ApiError> {
    db::projects::list(pool, principal.access(), Some(project))
        .await?
        .pop()
        .ok_or_else(|| not_found(project))
}

/// The project whose `/v2` id is `owner/slug`: a 404 naming that id when the caller
/// cannot read it, exactly like a missing one.
pub async fn find(
    pool: &PgPool,
    principal: &Principal,
    owner: &str,
    slug: &str,
) -> Result<ProjectView, ApiError> {
    db::projects::by_path(pool, principal.access(), owner, slug)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            what: "project",
            id: format!("{owner}/{slug}"),
        })
}

pub async fn update(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    change: &ProjectChange,
) -> Result<ProjectView, ApiError> {
    let description = change.description.as_ref().map(Option::as_deref);
    let updated: Option<Project> = db::projects::update(
        pool,
        principal.access(),
        project,
        change.name.as_deref(),
        description,
    )
    .await?;
    if updated.is_none() {
        let mut conn = pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
    }
    get(pool, principal, project).await
}

/// Deletes the project; one still holding entries or samples only with `force`.
pub async fn delete(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    force: bool,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    db::projects::lock(&mut *tx, project).await?;
    let view = db::projects::list(&mut *tx, principal.access(), Some(project))
        .await?
        .pop()
        .ok_or_else(|| not_found(project))?;
    if view.role < Role::Admin {
        return Err(ApiError::RoleTooLow(Role::Admin));
    }
    if view.project.personal {
        return Err(ApiError::PersonalProject);
    }
    let (entries, samples) = db::projects::contents(&mut *tx, project).await?;
    if (entries, samples) != (0, 0) && !force {
        return Err(ApiError::ProjectNotEmpty { entries, samples });
    }
    let request_id = telemetry::current_request_id();
    db::projects::delete(
        &mut tx,
        project,
        &principal.user_id,
        principal.key_id,
        request_id.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The members, for anyone who may read the project.
pub async fn members(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
) -> Result<Vec<Member>, ApiError> {
    let mut conn = pool.acquire().await?;
    require_role(&mut conn, principal, project, Role::Viewer).await?;
    Ok(db::projects::members(&mut *conn, project).await?)
}

/// Adds `user` with `role`, or changes its role (admins only). The last admin cannot be
/// demoted.
pub async fn put_member(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    user: &str,
    role: Role,
    execute: Option<bool>,
) -> Result<Member, ApiError> {
    if !valid_user_id(user) {
        return Err(FieldError::invalid_value(
            "user_id",
            "'user_id' must be 1-128 letters, digits, '_', '.', '@' or '-'",
        )
        .into());
    }
    let mut tx = pool.begin().await?;
    db::projects::lock(&mut *tx, project).await?;
    require_role(&mut tx, principal, project, Role::Admin).await?;
    let members = db::projects::members(&mut *tx, project).await?;
    if role < Role::Admin && is_last_admin(&members, user) {
        return Err(ApiError::LastAdmin);
    }
    db::users::ensure(&mut *tx, user).await?;
    let before = members.iter().find(|m| m.user_id == user).map(|m| m.role);
    let member = db::projects::put_member(&mut *tx, project, user, role, execute).await?;
    db::events::record_member_change(
        &mut *tx,
        project,
        &actor(principal),
        user,
        before,
        Some(member.role),
    )
    .await?;
    tx.commit().await?;
    Ok(member)
}

/// Removes `user` (admins remove anyone; any member may leave). The last admin cannot.
pub async fn remove_member(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    user: &str,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    db::projects::lock(&mut *tx, project).await?;
    let needed = if user == principal.user_id {
        Role::Viewer
    } else {
        Role::Admin
    };
    require_role(&mut tx, principal, project, needed).await?;
    let members = db::projects::members(&mut *tx, project).await?;
    if is_last_admin(&members, user) {
        return Err(ApiError::LastAdmin);
    }
    if !db::projects::remove_member(&mut *tx, project, user).await? {
        return Err(ApiError::NotFound {
            what: "member",
            id: user.to_owned(),
        });
    }
    let before = members.iter().find(|m| m.user_id == user).map(|m| m.role);
    db::events::record_member_change(&mut *tx, project, &actor(principal), user, before, None)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Who changed a membership, for its event.
fn actor(principal: &Principal) -> db::data_entries::Actor<'_> {
    db::data_entries::Actor {
        user_id: &principal.user_id,
        key_id: principal.key_id,
        request_id: None,
    }
}

fn is_last_admin(members: &[Member], user: &str) -> bool {
    let admins: Vec<&Member> = members.iter().filter(|m| m.role == Role::Admin).collect();
    matches!(admins.as_slice(), [only] if only.user_id == user)
}
