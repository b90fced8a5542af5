//! Projects and members: `/projects`, `/projects/{id}`, `/projects/{id}/members[/{user}]`,
//! and the Atomscale SDK's `/projects/{id}/physical_samples`.
//!
//! Reads need the `read` scope and membership; changes need `write` and the role the
//! change takes (admin for the project and its members). A project the caller cannot read
//! is a 404, exactly like a missing one.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::body::JsonObject;
use super::response::{parse_id, query_pairs};
use crate::auth::Principal;
use crate::catalog::projects as service;
use crate::db;
use crate::db::physical_samples::SampleQuery;
use crate::domain::project::{Member, ProjectChange, ProjectView, parse_role};
use crate::domain::{FieldError, Scope, timestamp};
use crate::error::ApiError;
use crate::openapi::responses::*;
use crate::openapi::schemas::{
    Member as MemberBody, MemberRole, PhysicalSample, Project, ProjectChange as ProjectChangeBody,
};
use crate::startup::AppState;

/// A project as the native API (and the Atomscale SDK) shows it.
pub fn project_json(view: &ProjectView) -> Value {
    let project = &view.project;
    json!({
        "project_id": project.project_id,
        "id": project.project_id,
        "name": project.name,
        "slug": project.slug,
        "description": project.description,
        "created_by": project.created_by,
        "owner_name": project.created_by,
        "personal": project.personal,
        "role": view.role,
        "physical_sample_count": view.physical_sample_count,
        "created_at": timestamp::format(&project.created_at),
        "modified_at": timestamp::format(&project.modified_at),
        "last_updated": timestamp::format(&project.modified_at),
    })
}

fn member_json(member: &Member) -> Value {
    json!({"user_id": member.user_id, "role": member.role})
}

#[utoipa::path(
    get,
    path = "/projects",
    operation_id = "list_projects",
    tag = "projects",
    summary = "The caller's projects",
    description = "Every project the caller is a member of (and its key may reach), oldest \
        first, each with the caller's `role`.",
    responses(
        (status = 200, description = "The projects.", body = Vec<Project>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let projects = service::list(&state.pool, &principal).await?;
    Ok(HttpResponse::Ok().json(projects.iter().map(project_json).collect::<Vec<_>>()))
}

#[utoipa::path(
    post,
    path = "/projects",
    operation_id = "create_project",
    tag = "projects",
    summary = "Create a project",
    description = "The caller becomes its admin. The slug is made from the name (`My Run 3` \
        → `my-run-3`, then `my-run-3-2` … if the caller has one already).",
    request_body = ProjectChangeBody,
    responses(
        (status = 201, description = "Created.", body = Project),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let change = ProjectChange::from_json(body, true)?;
    let view = service::create(&state.pool, &principal, &change).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/projects/{}", view.project.project_id)))
        .json(project_json(&view)))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}",
    operation_id = "get_project",
    tag = "projects",
    summary = "Get a project",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    responses(
        (status = 200, description = "The project.", body = Project),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let project = parse_id(&path)?;
    let view = service::get(&state.pool, &principal, project).await?;
    Ok(HttpResponse::Ok().json(project_json(&view)))
}

#[utoipa::path(
    patch,
    path = "/projects/{project_id}",
    operation_id = "update_project",
    tag = "projects",
    summary = "Rename or re-describe a project (admins)",
    description = "The slug stays as it was made.",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    request_body = ProjectChangeBody,
    responses(
        (status = 200, description = "The project as it now is.", body = Project),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let project = parse_id(&path)?;
    let change = ProjectChange::from_json(body, false)?;
    let view = service::update(&state.pool, &principal, project, &change).await?;
    Ok(HttpResponse::Ok().json(project_json(&view)))
}

#[utoipa::path(
    delete,
    path = "/projects/{project_id}",
    operation_id = "delete_project",
    tag = "projects",
    summary = "Delete a project (admins)",
    description = "A project still holding entries or samples is a 409 `project_not_empty` \
        unless `?force=true`, which deletes them too (each entry's deletion is in its \
        history). A personal project cannot be deleted.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("force" = Option<bool>, Query, description = "Delete its entries and samples too."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let project = parse_id(&path)?;
    let mut force = false;
    for (name, value) in query_pairs(&request) {
        match (name.as_str(), value.as_str()) {
            ("force", "true") => force = true,
            ("force", "false") => force = false,
            ("force", _) => {
                return Err(ApiError::BadQuery(vec![FieldError::invalid_value(
                    "force",
                    "'force' must be true or false",
                )]));
            }
            (other, _) => {
                return Err(ApiError::BadQuery(vec![FieldError::unknown_field(
                    other,
                    &["force"],
                )]));
            }
        }
    }
    service::delete(&state.pool, &principal, project, force).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/members",
    operation_id = "list_project_members",
    tag = "projects",
    summary = "A project's members",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    responses(
        (status = 200, description = "The members, by user id.", body = Vec<MemberBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn members(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let project = parse_id(&path)?;
    let members = service::members(&state.pool, &principal, project).await?;
    Ok(HttpResponse::Ok().json(members.iter().map(member_json).collect::<Vec<_>>()))
}

#[utoipa::path(
    put,
    path = "/projects/{project_id}/members/{user_id}",
    operation_id = "put_project_member",
    tag = "projects",
    summary = "Add a member or change its role (admins)",
    description = "Demoting the last admin is a 409 `last_admin`. The change counts from the \
        next statement on, on every instance.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("user_id" = String, Path, description = "The user."),
    ),
    request_body = MemberRole,
    responses(
        (status = 200, description = "The membership as it now is.", body = MemberBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn put_member(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, user) = path.into_inner();
    let project = parse_id(&project)?;
    let role = parse_role(body)?;
    let member = service::put_member(&state.pool, &principal, project, &user, role, None).await?;
    Ok(HttpResponse::Ok().json(member_json(&member)))
}

#[utoipa::path(
    delete,
    path = "/projects/{project_id}/members/{user_id}",
    operation_id = "remove_project_member",
    tag = "projects",
    summary = "Remove a member (admins; any member may leave)",
    description = "Removing the last admin is a 409 `last_admin`.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("user_id" = String, Path, description = "The user."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn remove_member(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, user) = path.into_inner();
    let project = parse_id(&project)?;
    service::remove_member(&state.pool, &principal, project, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/physical_samples",
    operation_id = "list_project_physical_samples",
    tag = "projects",
    summary = "A project's physical samples (as the Atomscale SDK asks)",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    responses(
        (status = 200, description = "The samples, oldest first.", body = Vec<PhysicalSample>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn physical_samples(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let project = parse_id(&path)?;
    // Through `get` first, so a project the caller cannot read is a 404, not `[]`.
    service::get(&state.pool, &principal, project).await?;
    let filter = SampleQuery {
        project: Some(project),
        ..SampleQuery::default()
    };
    let samples = db::physical_samples::list(&state.pool, principal.access(), &filter).await?;
    Ok(HttpResponse::Ok().json(samples))
}
