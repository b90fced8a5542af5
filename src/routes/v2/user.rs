//! `GET /v2/user`, `GET /v2/users/{username}` and `GET /v2/rate_limit`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::shape::base_url;
use super::standing;
use crate::auth::Principal;
use crate::domain::Scope;
use crate::error::ApiError;
use crate::openapi::v2::*;

/// The caller's user. labcat knows only the user id; the other members are null (present,
/// so the client does not fetch again to look for them).
fn user_json(user_id: &str, base: &str) -> Value {
    let mut user = json!({
        "href": format!("{base}/users/{user_id}"),
        "username": user_id,
    });
    for field in [
        "email",
        "first_name",
        "last_name",
        "affiliation",
        "phone",
        "address",
        "state",
        "country",
        "zip_code",
        "city",
        "role",
    ] {
        user[field] = Value::Null;
    }
    user
}

#[utoipa::path(
    get,
    path = "/v2/user",
    operation_id = "v2_get_current_user",
    tag = "v2 files",
    summary = "The caller's user",
    responses(
        (status = 200, description = "The caller.", body = SbgUser),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn me(principal: Principal, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    Ok(HttpResponse::Ok().json(user_json(&principal.user_id, &base_url(&request))))
}

/// Only the caller's own user is visible; any other name is unknown.
#[utoipa::path(
    get,
    path = "/v2/users/{username}",
    operation_id = "v2_get_user",
    tag = "v2 files",
    summary = "A user (only the caller's own is visible)",
    params(("username" = String, Path, description = "A user id.")),
    responses(
        (status = 200, description = "The caller.", body = SbgUser),
        (status = 404, response = SbgNotFound),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    if *path != principal.user_id {
        return Err(ApiError::NotFound {
            what: "user",
            id: path.into_inner(),
        });
    }
    Ok(HttpResponse::Ok().json(user_json(&principal.user_id, &base_url(&request))))
}

/// The caller's request-rate standing, as the `X-RateLimit-*` headers tell it too (the
/// client reads those). labcat limits no compute instances: `instance_limit` is -1.
#[utoipa::path(
    get,
    path = "/v2/rate_limit",
    operation_id = "v2_get_rate_limit",
    tag = "v2 files",
    summary = "The caller's rate-limit standing",
    responses(
        (status = 200, description = "The standing.", body = SbgRateLimit),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn rate_limit(
    principal: Principal,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (limit, remaining, reset) = standing(&request);
    Ok(HttpResponse::Ok().json(json!({
        "rate": {"limit": limit, "remaining": remaining, "reset": reset},
        "instance_limit": {"limit": -1, "remaining": -1, "reset": reset},
    })))
}
