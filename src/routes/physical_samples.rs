use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::JsonObject;
use super::response::{parse_id, query_pairs};
use crate::auth::Principal;
use crate::db;
use crate::domain::{FieldError, NewPhysicalSample, Scope};
use crate::error::ApiError;
use crate::startup::AppState;

/// `POST /physical_samples`: 201 with the sample; a name the owner already used (ignoring
/// case and surrounding space) is a 409 naming the existing sample.
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let sample = NewPhysicalSample::from_json(body)?;
    match db::physical_samples::insert(&state.pool, &principal.user_id, &sample.name).await? {
        Ok(sample) => Ok(HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/physical_samples/{}", sample.physical_sample_id),
            ))
            .json(sample)),
        Err(existing_id) => Err(ApiError::DuplicateSample { existing_id }),
    }
}

/// `GET /physical_samples`: the caller's samples, optionally narrowed by
/// `physical_sample_id` or `name` (as the Atomscale SDK asks).
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let mut only = None;
    let mut name = None;
    for (key, value) in query_pairs(&request) {
        match key.as_str() {
            "physical_sample_id" | "physical_sample_ids" | "id" => {
                only = Some(parse_id(&value).map_err(|_| {
                    ApiError::BadQuery(vec![FieldError::invalid_value(&key, "must be a UUID")])
                })?)
            }
            "name" if value.contains('\0') => {
                return Err(ApiError::BadQuery(vec![FieldError::invalid_value(
                    "name",
                    "'name' contains a NUL character",
                )]));
            }
            "name" => name = Some(value),
            _ => {}
        }
    }
    let samples =
        db::physical_samples::list(&state.pool, &principal.user_id, only, name.as_deref()).await?;
    Ok(HttpResponse::Ok().json(samples))
}

pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let id = parse_id(&path)?;
    let sample = db::physical_samples::get(&state.pool, &principal.user_id, id)
        .await?
        .ok_or(ApiError::NotFound {
            what: "physical sample",
            id: id.to_string(),
        })?;
    Ok(HttpResponse::Ok().json(sample))
}
