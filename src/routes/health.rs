use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and every migration this build knows is applied.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let applied = db::applied_migrations(&state.pool)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    if applied < db::MIGRATOR.iter().count() as i64 {
        return Err(ApiError::Unavailable);
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "migrations": applied})))
}
