use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "get_health",
    tag = "service",
    summary = "Liveness: the process is up",
    security(()),
    responses((status = 200, description = "Up.", body = crate::openapi::schemas::Health)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and every migration this build knows is applied.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "get_readiness",
    tag = "service",
    summary = "Readiness: the database answers and is fully migrated",
    security(()),
    responses(
        (status = 200, description = "Ready to serve.", body = crate::openapi::schemas::Readiness),
        (status = 503, response = crate::openapi::responses::ServiceUnavailable),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let applied = db::applied_migrations(&state.pool)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    if applied < db::MIGRATOR.iter().count() as i64 {
        return Err(ApiError::Unavailable);
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "migrations": applied})))
}
