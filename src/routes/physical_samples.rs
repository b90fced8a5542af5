use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::JsonObject;
use super::response::{parse_id, query_pairs};
use crate::auth::Principal;
use crate::catalog::entries::refusal;
use crate::db;
use crate::db::physical_samples::{Inserted, SampleQuery};
use crate::domain::{FieldError, NewPhysicalSample, Role, Scope};
use crate::error::ApiError;
use crate::openapi::params::SampleFilter;
use crate::openapi::responses::*;
use crate::openapi::schemas::{NewPhysicalSample as NewSampleBody, PhysicalSample};
use crate::startup::AppState;

/// `POST /physical_samples`: 201 with the sample; a name the owner already used (ignoring
/// case and surrounding space) is a 409 naming the existing sample.
#[utoipa::path(
    post,
    path = "/physical_samples",
    operation_id = "create_physical_sample",
    tag = "physical samples",
    summary = "Register a physical sample",
    request_body(content = NewSampleBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = PhysicalSample,
            headers(("Location" = String, description = "`/physical_samples/{id}`.")),
            links(("GetPhysicalSample" = (operation_id = "get_physical_sample",
                parameters(("physical_sample_id" = "$response.body#/physical_sample_id")))))),
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
    principal.require(Scope::Write)?;
    let sample = NewPhysicalSample::from_json(body)?;
    let project = principal.access().default_project(sample.project_id);
    let access = principal.access();
    match db::physical_samples::insert(&state.pool, access, principal.key_id, project, &sample.name)
        .await?
    {
        Inserted::Created(sample) => Ok(HttpResponse::Created()
            .insert_header((
                header::LOCATION,
                format!("/physical_samples/{}", sample.physical_sample_id),
            ))
            .json(sample)),
        Inserted::Duplicate(existing_id) => Err(ApiError::DuplicateSample { existing_id }),
        Inserted::NotPermitted => {
            let mut conn = state.pool.acquire().await?;
            Err(match project {
                Some(project) => refusal(&mut conn, &principal, project, Role::Editor).await,
                None => ApiError::RoleTooLow(Role::Editor),
            })
        }
    }
}

/// `GET /physical_samples`: the caller's samples, optionally narrowed by
/// `physical_sample_id` or `name` (as the Atomscale SDK asks).
#[utoipa::path(
    get,
    path = "/physical_samples",
    operation_id = "list_physical_samples",
    tag = "physical samples",
    summary = "List physical samples",
    params(SampleFilter),
    responses(
        (status = 200, description = "The caller's samples.", body = Vec<PhysicalSample>),
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
    let filter = SampleQuery {
        only,
        name: name.as_deref(),
        project: None,
    };
    let samples = db::physical_samples::list(&state.pool, principal.access(), &filter).await?;
    Ok(HttpResponse::Ok().json(samples))
}

#[utoipa::path(
    get,
    path = "/physical_samples/{physical_sample_id}",
    operation_id = "get_physical_sample",
    tag = "physical samples",
    summary = "Get a physical sample",
    params(("physical_sample_id" = uuid::Uuid, Path, description = "The sample's id.")),
    responses(
        (status = 200, description = "The sample.", body = PhysicalSample),
        (status = 400, response = BadRequest),
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
    let id = parse_id(&path)?;
    let sample = db::physical_samples::get(&state.pool, principal.access(), id)
        .await?
        .ok_or(ApiError::NotFound {
            what: "physical sample",
            id: id.to_string(),
        })?;
    Ok(HttpResponse::Ok().json(sample))
}
