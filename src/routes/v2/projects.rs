//! `/v2/projects` and their members, as sevenbridges-python 2.11.2 uses them: a project's
//! id is `<created_by>/<slug>`, members are users whose role is shown (and set) as Seven
//! Bridges permissions. Every decision about who may do what is `catalog::projects`'.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::files::page_query;
use super::shape::base_url;
use crate::auth::Principal;
use crate::catalog::projects as service;
use crate::domain::file_query::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::domain::project::{Member, ProjectChange, ProjectView};
use crate::domain::{FieldError, Role, Scope, timestamp};
use crate::error::ApiError;
use crate::openapi::v2::*;
use crate::routes::body::JsonObject;
use crate::routes::response::query_pairs;
use crate::startup::AppState;

/// labcat bills nothing, but the client crashes on a null `billing_group` and rejects a
/// non-UUID one: every project reports this one.
pub const BILLING_GROUP: &str = "00000000-0000-4000-8000-000000000000";

const PERMISSIONS: &[&str] = &["read", "copy", "write", "execute", "admin"];

fn project_json(view: &ProjectView, base: &str, settings: Option<&Value>) -> Value {
    let project = &view.project;
    let id = format!("{}/{}", project.created_by, project.slug);
    json!({
        "href": format!("{base}/projects/{id}"),
        "id": id,
        "name": project.name,
        "description": project.description,
        "type": "v2",
        "billing_group": BILLING_GROUP,
        "tags": [],
        // Not stored: echoed on the create or update that sent them, `{}` otherwise.
        "settings": settings.cloned().unwrap_or_else(|| json!({})),
        "root_folder": null,
        "created_by": project.created_by,
        "created_on": timestamp::format(&project.created_at),
        "modified_on": timestamp::format(&project.modified_at),
        "category": null,
    })
}

/// A role as Seven Bridges permissions. `read` is always true; a viewer also has `copy`
/// (labcat serves metadata, and whoever reads it may copy it); an editor adds `write`; an
/// admin has everything. `execute` grants nothing here, so it is the stored flag.
pub fn permissions(member: &Member) -> Value {
    let admin = member.role == Role::Admin;
    json!({
        "read": true,
        "copy": true,
        "write": member.role >= Role::Editor,
        "execute": admin || member.execute,
        "admin": admin,
    })
}

/// Permissions as a role: `admin` makes an admin, else `write` an editor, else a viewer.
fn role_of(permissions: &Map<String, Value>) -> Role {
    let on = |key: &str| permissions.get(key).and_then(Value::as_bool) == Some(true);
    if on("admin") {
        Role::Admin
    } else if on("write") {
        Role::Editor
    } else {
        Role::Viewer
    }
}

fn member_json(member: &Member, project: &str, base: &str) -> Value {
    json!({
        "href": format!("{base}/projects/{project}/members/{}", member.user_id),
        "id": member.user_id,
        "username": member.user_id,
        "email": null,
        "type": "USER",
        "permissions": permissions(member),
    })
}

/// A permissions object as sent: only known keys, each a boolean.
fn parse_permissions(field: &str, value: Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(permissions) = value else {
        return Err(FieldError::invalid_type(field, "an object of booleans").into());
    };
    let mut errors = Vec::new();
    for (key, value) in &permissions {
        if !PERMISSIONS.contains(&key.as_str()) {
            errors.push(FieldError::unknown_field(key, PERMISSIONS));
        } else if !value.is_boolean() {
            errors.push(FieldError::invalid_type(
                &format!("{field}.{key}"),
                "a boolean",
            ));
        }
    }
    if errors.is_empty() {
        Ok(permissions)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// `offset` and `limit` (Seven Bridges' defaults), and the other parameters allowed.
fn paging(pairs: &[(String, String)], allowed: &[&str]) -> Result<(i64, i64), ApiError> {
    let (mut offset, mut limit) = (0, DEFAULT_LIMIT);
    let mut errors = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "offset" => match value.parse() {
                Ok(parsed) if parsed >= 0 => offset = parsed,
                _ => errors.push(FieldError::invalid_value(
                    name,
                    "'offset' must be an integer of 0 or more",
                )),
            },
            "limit" => match value.parse() {
                Ok(parsed) if (1..=MAX_LIMIT).contains(&parsed) => limit = parsed,
                _ => errors.push(FieldError::invalid_value(
                    name,
                    format!("'limit' must be an integer from 1 to {MAX_LIMIT}"),
                )),
            },
            other if allowed.contains(&other) => {}
            other => errors.push(FieldError::new(
                other,
                "unknown_parameter",
                format!("unknown query parameter '{other}'"),
            )),
        }
    }
    if errors.is_empty() {
        Ok((offset, limit))
    } else {
        Err(ApiError::BadQuery(errors))
    }
}

/// One page of `items` as a Seven Bridges collection: `href` reproduces this page (the
/// client's `all()` re-fetches it), `links` are absolute, the total is in a header.
fn collection(
    url: &str,
    pairs: &[(String, String)],
    (offset, limit): (i64, i64),
    items: Vec<Value>,
) -> HttpResponse {
    let total = items.len() as i64;
    let page: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    let at = |offset: i64| format!("{url}?{}", page_query(pairs, offset, limit));
    let mut links = Vec::new();
    if offset + (page.len() as i64) < total && !page.is_empty() {
        links.push(json!({"href": at(offset + limit), "rel": "next", "method": "GET"}));
    }
    if offset > 0 {
        let previous = at((offset - limit).max(0));
        links.push(json!({"href": previous, "rel": "prev", "method": "GET"}));
    }
    HttpResponse::Ok()
        .insert_header(("X-Total-Matching-Query", total))
        .json(json!({"href": at(offset), "items": page, "links": links}))
}

/// The caller's projects (of `owner`, when given), filtered by `name=`. labcat projects
/// have no tags or category, so a filter on either matches none. Paged here: a caller is
/// in few projects.
async fn list_of(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    owner: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let paging = paging(&pairs, &["name", "fields", "tags", "category"])?;
    let names: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name == "name")
        .map(|(_, value)| value.as_str())
        .collect();
    let nothing = pairs
        .iter()
        .any(|(name, _)| name == "tags" || name == "category");
    let base = base_url(&request);
    let items = service::list(&state.pool, &principal)
        .await?
        .iter()
        .filter(|view| owner.is_none_or(|owner| view.project.created_by == owner))
        .filter(|view| names.iter().all(|name| view.project.name == *name))
        .filter(|_| !nothing)
        .map(|view| project_json(view, &base, None))
        .collect();
    let url = match owner {
        Some(owner) => format!("{base}/projects/{owner}"),
        None => format!("{base}/projects"),
    };
    Ok(collection(&url, &pairs, paging, items))
}

#[utoipa::path(
    get,
    path = "/v2/projects",
    operation_id = "v2_list_projects",
    tag = "v2 projects",
    summary = "List the caller's projects",
    description = "Also at `/v2/projects/` (the client's form).",
    params(SbgProjectQuery),
    responses(
        (status = 200, description = "A page of projects.", body = SbgProjectPage,
            headers(("X-Total-Matching-Query" = i64, description = "Projects matching, over all pages."))),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list_of(principal, state, request, None).await
}

#[utoipa::path(
    get,
    path = "/v2/projects/{owner}",
    operation_id = "v2_list_owner_projects",
    tag = "v2 projects",
    summary = "List one owner's projects the caller may read",
    params(("owner" = String, Path, description = "The user who created them."), SbgProjectQuery),
    responses(
        (status = 200, description = "A page of projects.", body = SbgProjectPage,
            headers(("X-Total-Matching-Query" = i64, description = "Projects matching, over all pages."))),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn list_owner(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list_of(principal, state, request, Some(&path)).await
}

/// A create or update body: `name` and `description` are labcat's; `billing_group`,
/// `tags`, `type` and `category` are accepted and ignored; `settings` is echoed.
fn parse_change(
    body: Map<String, Value>,
    creating: bool,
) -> Result<(ProjectChange, Option<Value>), ApiError> {
    let mut native = Map::new();
    let mut settings = None;
    let mut errors = Vec::new();
    for (key, value) in body {
        match key.as_str() {
            "name" => match &value {
                Value::String(name) if !name.trim().is_empty() => {
                    native.insert(key, value);
                }
                // Seven Bridges' 3007 "empty name" (see `error`).
                _ => errors.push(FieldError::new(
                    "name",
                    "empty_project_name",
                    "'name' must be a non-empty string",
                )),
            },
            "description" => {
                native.insert(key, value);
            }
            "settings" => match value {
                Value::Object(_) | Value::Null => settings = Some(value),
                _ => errors.push(FieldError::invalid_type("settings", "an object")),
            },
            "billing_group" | "tags" | "type" | "category" => {}
            other => errors.push(FieldError::unknown_field(
                other,
                &["name", "description", "billing_group", "tags", "settings"],
            )),
        }
    }
    if creating && !native.contains_key("name") && errors.is_empty() {
        errors.push(FieldError::new(
            "name",
            "empty_project_name",
            "'name' is required",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let change = ProjectChange::from_json(native, creating)?;
    Ok((change, settings.filter(|s| !s.is_null())))
}

#[utoipa::path(
    post,
    path = "/v2/projects",
    operation_id = "v2_create_project",
    tag = "v2 projects",
    summary = "Create a project",
    description = "The caller becomes its admin; its id is `<caller>/<slug of the name>`.",
    request_body(content = SbgProjectCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = SbgProject),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (change, settings) = parse_change(body, true)?;
    let view = service::create(&state.pool, &principal, &change).await?;
    let project = project_json(&view, &base_url(&request), settings.as_ref());
    Ok(HttpResponse::Created().json(project))
}

#[utoipa::path(
    get,
    path = "/v2/projects/{owner}/{project}",
    operation_id = "v2_get_project",
    tag = "v2 projects",
    summary = "Get a project",
    params(SbgProjectPath),
    responses(
        (status = 200, description = "The project.", body = SbgProject),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (owner, slug) = path.into_inner();
    let view = service::find(&state.pool, &principal, &owner, &slug).await?;
    Ok(HttpResponse::Ok().json(project_json(&view, &base_url(&request), None)))
}

#[utoipa::path(
    patch,
    path = "/v2/projects/{owner}/{project}",
    operation_id = "v2_update_project",
    tag = "v2 projects",
    summary = "Rename or re-describe a project (admins)",
    description = "The id (slug) stays as it was made.",
    params(SbgProjectPath),
    request_body(content = SbgProjectPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The project as it now is.", body = SbgProject),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (owner, slug) = path.into_inner();
    let (change, settings) = parse_change(body, false)?;
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    let view = service::update(&state.pool, &principal, found.project.project_id, &change).await?;
    let project = project_json(&view, &base_url(&request), settings.as_ref());
    Ok(HttpResponse::Ok().json(project))
}

#[utoipa::path(
    delete,
    path = "/v2/projects/{owner}/{project}",
    operation_id = "v2_delete_project",
    tag = "v2 projects",
    summary = "Delete a project and its files (admins)",
    description = "As on Seven Bridges, its files go with it (each entry's deletion is in \
        its history). A personal project cannot be deleted (409).",
    params(SbgProjectPath),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (owner, slug) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    service::delete(&state.pool, &principal, found.project.project_id, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/v2/projects/{owner}/{project}/members",
    operation_id = "v2_list_project_members",
    tag = "v2 projects",
    summary = "A project's members",
    params(SbgProjectPath, SbgPaging),
    responses(
        (status = 200, description = "A page of members, by username.", body = SbgMemberPage,
            headers(("X-Total-Matching-Query" = i64, description = "Members, over all pages."))),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn members(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let paging = paging(&pairs, &["fields"])?;
    let (owner, slug) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    let id = format!("{owner}/{slug}");
    let base = base_url(&request);
    let items = service::members(&state.pool, &principal, found.project.project_id)
        .await?
        .iter()
        .map(|member| member_json(member, &id, &base))
        .collect();
    Ok(collection(
        &format!("{base}/projects/{id}/members"),
        &pairs,
        paging,
        items,
    ))
}

/// The member `user` of the project, as the caller (any member) sees it.
async fn find_member(
    state: &AppState,
    principal: &Principal,
    project: uuid::Uuid,
    user: &str,
) -> Result<Member, ApiError> {
    service::members(&state.pool, principal, project)
        .await?
        .into_iter()
        .find(|member| member.user_id == user)
        .ok_or_else(|| ApiError::NotFound {
            what: "member",
            id: user.to_owned(),
        })
}

#[utoipa::path(
    post,
    path = "/v2/projects/{owner}/{project}/members",
    operation_id = "v2_add_project_member",
    tag = "v2 projects",
    summary = "Add a member (admins)",
    description = "`permissions` become a role: `admin` an admin, else `write` an editor, \
        else a viewer (also when left out). Adding a member again sets its permissions. \
        Only users (`type` `USER`) can be members.",
    params(SbgProjectPath),
    request_body(content = SbgNewMember, content_type = "application/json"),
    responses(
        (status = 200, description = "The member.", body = SbgMember),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn add_member(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (mut user, mut permissions) = (None, Map::new());
    let mut errors = Vec::new();
    for (key, value) in body {
        match (key.as_str(), value) {
            ("username", Value::String(name)) => user = Some(name),
            ("type", Value::String(kind)) if kind == "USER" => {}
            ("type", _) => errors.push(FieldError::invalid_value(
                "type",
                "only users can be members: 'type' must be \"USER\"",
            )),
            ("permissions", value) => match parse_permissions("permissions", value) {
                Ok(parsed) => permissions = parsed,
                Err(ApiError::Invalid(more)) => errors.extend(more),
                Err(other) => return Err(other),
            },
            (other, _) => errors.push(FieldError::unknown_field(
                other,
                &["username", "type", "permissions"],
            )),
        }
    }
    let user = match user {
        Some(user) if errors.is_empty() => user,
        None if errors.is_empty() => return Err(FieldError::required("username").into()),
        _ => return Err(ApiError::Invalid(errors)),
    };
    let (owner, slug) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    let execute = permissions.get("execute").and_then(Value::as_bool);
    let member = service::put_member(
        &state.pool,
        &principal,
        found.project.project_id,
        &user,
        role_of(&permissions),
        Some(execute.unwrap_or(false)),
    )
    .await?;
    let id = format!("{owner}/{slug}");
    Ok(HttpResponse::Ok().json(member_json(&member, &id, &base_url(&request))))
}

#[utoipa::path(
    get,
    path = "/v2/projects/{owner}/{project}/members/{username}",
    operation_id = "v2_get_project_member",
    tag = "v2 projects",
    summary = "A member",
    params(SbgProjectPath, ("username" = String, Path, description = "The member's user id.")),
    responses(
        (status = 200, description = "The member.", body = SbgMember),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn member(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (owner, slug, user) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    let member = find_member(&state, &principal, found.project.project_id, &user).await?;
    let id = format!("{owner}/{slug}");
    Ok(HttpResponse::Ok().json(member_json(&member, &id, &base_url(&request))))
}

#[utoipa::path(
    delete,
    path = "/v2/projects/{owner}/{project}/members/{username}",
    operation_id = "v2_remove_project_member",
    tag = "v2 projects",
    summary = "Remove a member (admins; any member may leave)",
    description = "The last admin cannot leave (409).",
    params(SbgProjectPath, ("username" = String, Path, description = "The member's user id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn remove_member(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (owner, slug, user) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    service::remove_member(&state.pool, &principal, found.project.project_id, &user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// PATCH merges the keys sent into the member's permissions; PUT sets them all (a key
/// left out is false). Either way the result becomes a role, so sending the same change
/// twice (as the client does) changes nothing more.
async fn set_permissions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    body: Map<String, Value>,
    merge: bool,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let changes = parse_permissions("permissions", Value::Object(body))?;
    let (owner, slug, user) = path.into_inner();
    let found = service::find(&state.pool, &principal, &owner, &slug).await?;
    let project = found.project.project_id;
    let current = find_member(&state, &principal, project, &user).await?;
    let mut wanted = match (merge, permissions(&current)) {
        (true, Value::Object(current)) => current,
        _ => Map::new(),
    };
    wanted.extend(changes);
    let execute = wanted
        .get("execute")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let member = service::put_member(
        &state.pool,
        &principal,
        project,
        &user,
        role_of(&wanted),
        Some(execute),
    )
    .await?;
    Ok(HttpResponse::Ok().json(permissions(&member)))
}

#[utoipa::path(
    patch,
    path = "/v2/projects/{owner}/{project}/members/{username}/permissions",
    operation_id = "v2_update_member_permissions",
    tag = "v2 projects",
    summary = "Change some of a member's permissions (admins)",
    description = "The keys sent are merged into the member's permissions, which then \
        become a role (`admin` → admin, else `write` → editor, else viewer).",
    params(SbgProjectPath, ("username" = String, Path, description = "The member's user id.")),
    request_body(content = SbgPermissionsChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The member's permissions now.", body = SbgPermissions),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn patch_permissions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    set_permissions(principal, state, path, body, true).await
}

#[utoipa::path(
    put,
    path = "/v2/projects/{owner}/{project}/members/{username}/permissions",
    operation_id = "v2_replace_member_permissions",
    tag = "v2 projects",
    summary = "Set all of a member's permissions (admins)",
    description = "A key left out is false; the permissions then become a role.",
    params(SbgProjectPath, ("username" = String, Path, description = "The member's user id.")),
    request_body(content = SbgPermissionsChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The member's permissions now.", body = SbgPermissions),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn put_permissions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    set_permissions(principal, state, path, body, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: Role, execute: bool) -> Member {
        Member {
            user_id: "bob".into(),
            role,
            execute,
        }
    }

    #[test]
    fn permissions_and_roles_map_both_ways() {
        for role in Role::ALL {
            let Value::Object(shown) = permissions(&member(*role, false)) else {
                unreachable!()
            };
            assert_eq!(role_of(&shown), *role, "a role survives its permissions");
        }
        assert_eq!(
            permissions(&member(Role::Viewer, true)),
            json!({"read": true, "copy": true, "write": false, "execute": true, "admin": false})
        );
        assert_eq!(permissions(&member(Role::Admin, false))["execute"], true);
        let sent = |body: Value| match body {
            Value::Object(map) => role_of(&map),
            _ => unreachable!(),
        };
        assert_eq!(sent(json!({"admin": true, "write": false})), Role::Admin);
        assert_eq!(sent(json!({"write": true})), Role::Editor);
        assert_eq!(sent(json!({"copy": true, "execute": true})), Role::Viewer);
        assert_eq!(sent(json!({})), Role::Viewer);
    }
}
