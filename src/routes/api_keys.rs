//! Key self-service: `GET|POST /api_keys`, `DELETE /api_keys/{id}`.
//!
//! Listing needs `read`, creating and revoking need `write`; `admin` alone is enough for
//! all three and is what it takes to touch another user's keys (and to create users). A
//! new key's scopes are never wider than the caller's.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::json;

use super::body::JsonObject;
use super::response::{parse_id, query_pairs};
use crate::auth::{IssueError, Principal, issue_key_within};
use crate::db;
use crate::db::api_keys::KeyRecord;
use crate::domain::api_key::{ApiKeyView, NewApiKey, valid_user_id};
use crate::domain::{FieldError, Scope, timestamp};
use crate::error::ApiError;
use crate::openapi::params::KeyOwner;
use crate::openapi::responses::*;
use crate::openapi::schemas::{ApiKey, CreatedApiKey, NewApiKey as NewApiKeyBody};
use crate::startup::AppState;

/// `GET /api_keys[?user_id=U]`: the caller's keys, or U's for an admin. Never secrets.
#[utoipa::path(
    get,
    path = "/api_keys",
    operation_id = "list_api_keys",
    tag = "api keys",
    summary = "List API keys",
    description = "The caller's keys (active, expired and revoked), or another user's for an \
        `admin` key. Never the secrets. Any other query parameter is a 400.",
    params(KeyOwner),
    responses(
        (status = 200, description = "The keys, oldest first.", body = Vec<ApiKey>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_own_or_admin(&principal, Scope::Read)?;
    let mut user_id = principal.user_id.clone();
    for (name, value) in query_pairs(&request) {
        match name.as_str() {
            "user_id" if valid_user_id(&value) => user_id = value,
            "user_id" => {
                return Err(ApiError::BadQuery(vec![FieldError::invalid_value(
                    "user_id",
                    "'user_id' must be 1-128 letters, digits, '_', '.', '@' or '-'",
                )]));
            }
            _ => {
                return Err(ApiError::BadQuery(vec![FieldError::new(
                    name.as_str(),
                    "unknown_parameter",
                    format!("unknown query parameter '{name}'; known: user_id"),
                )]));
            }
        }
    }
    if user_id != principal.user_id {
        principal.require(Scope::Admin)?;
    }
    let now = Utc::now();
    let keys: Vec<ApiKeyView> = db::api_keys::list(&state.pool, Some(&user_id))
        .await?
        .into_iter()
        .map(|record| view(record, now))
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

/// `POST /api_keys`: 201 with the secret, shown this once.
#[utoipa::path(
    post,
    path = "/api_keys",
    operation_id = "create_api_key",
    tag = "api keys",
    summary = "Create an API key",
    description = "The response carries the secret, shown this once; only its SHA-256 is \
        stored. The new key's scopes cannot exceed the caller's (403), nor can it outlive the \
        caller's key: without `expires_at` it expires with the caller's key, and a later \
        `expires_at` is a 422 (`expires_after_parent`). A key for another user needs `admin` \
        (and creates the user if new). A user holding `auth.max_active_keys_per_user` (100) \
        active keys gets a 409 (`too_many_api_keys`) until one is revoked or expires.",
    request_body(content = NewApiKeyBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = CreatedApiKey),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
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
    require_own_or_admin(&principal, Scope::Write)?;
    let new_key = NewApiKey::from_json(body, Utc::now())?;
    let user_id = new_key
        .user_id
        .clone()
        .unwrap_or_else(|| principal.user_id.clone());
    if user_id != principal.user_id {
        principal.require(Scope::Admin)?;
    }
    if let Some(scope) = new_key.scope_beyond(&principal.scopes) {
        return Err(ApiError::Forbidden(scope));
    }
    let expires_at = new_key.expiry_within(principal.expires_at)?;
    let projects = new_key.projects_within(principal.projects.as_deref())?;
    if user_id == principal.user_id
        && let Some(projects) = &projects
    {
        // Only projects the caller reaches: anything else is unknown to it.
        let mut conn = state.pool.acquire().await?;
        for project in projects {
            if db::projects::role_of(&mut *conn, principal.access(), *project)
                .await?
                .is_none()
            {
                return Err(FieldError::new(
                    "projects",
                    "unknown_project",
                    format!("no project with id '{project}'"),
                )
                .into());
            }
        }
    }
    let (secret, record) = issue_key_within(
        &state.pool,
        &user_id,
        &new_key.name,
        &new_key.scopes,
        expires_at,
        projects.as_deref(),
        state.max_active_keys_per_user,
    )
    .await
    .map_err(|error| match error {
        IssueError::TooManyKeys { limit } => ApiError::TooManyKeys { limit },
        IssueError::Db(error) => error.into(),
    })?;
    tracing::info!(
        key_id = %record.key_id,
        user_id = %record.user_id,
        created_by = %principal.key_id,
        "api key created"
    );
    Ok(HttpResponse::build(StatusCode::CREATED).json(json!({
        "id": record.key_id,
        "key": secret.expose(),
        "prefix": record.prefix,
        "name": record.name,
        "scopes": record.scopes,
        "user_id": record.user_id,
        "created_at": timestamp::format(&record.created_at),
        "expires_at": record.expires_at.as_ref().map(timestamp::format),
        "projects": record.projects,
    })))
}

/// `DELETE /api_keys/{id}`: revokes at once (204). Someone else's key without `admin` is a
/// 404, exactly like a missing one.
#[utoipa::path(
    delete,
    path = "/api_keys/{key_id}",
    operation_id = "revoke_api_key",
    tag = "api keys",
    summary = "Revoke an API key",
    description = "Takes effect at once on this instance and within 5 seconds on every other. Someone else's \
        key, without `admin`, is a 404 like a missing one.",
    params(("key_id" = uuid::Uuid, Path, description = "The key's `id`.")),
    responses(
        (status = 204, description = "Revoked (or already revoked)."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn revoke(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_own_or_admin(&principal, Scope::Write)?;
    let key_id = parse_id(&path)?;
    let owner = if principal.scopes.contains(&Scope::Admin) {
        None
    } else {
        Some(principal.user_id.as_str())
    };
    if !db::api_keys::revoke_owned(&state.pool, key_id, owner).await? {
        return Err(ApiError::NotFound {
            what: "API key",
            id: key_id.to_string(),
        });
    }
    // This instance forgets it at once; others within auth.key_cache_seconds.
    state.key_cache.clear();
    tracing::info!(%key_id, revoked_by = %principal.key_id, "api key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// `scope`, unless the key is an admin key, which may manage keys without it.
fn require_own_or_admin(principal: &Principal, scope: Scope) -> Result<(), ApiError> {
    if principal.scopes.contains(&Scope::Admin) {
        Ok(())
    } else {
        principal.require(scope)
    }
}

fn view(record: KeyRecord, now: chrono::DateTime<Utc>) -> ApiKeyView {
    ApiKeyView {
        status: ApiKeyView::status_at(record.revoked_at, record.expires_at, now),
        id: record.key_id,
        prefix: record.prefix,
        name: record.name,
        scopes: record.scopes,
        user_id: record.user_id,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
        revoked_at: record.revoked_at,
        projects: record.projects,
    }
}
