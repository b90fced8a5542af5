//! `/projects/{project_id}/schemas/{char_source_type}`: a project's metadata schema for one
//! data type (or `default`), its earlier versions, and the dry run of a candidate.
//!
//! Reading needs the `read` scope and membership; PUT, DELETE and the dry run need `write`
//! and the admin role. A project the caller cannot read is a 404, exactly like a missing one.

use actix_web::{HttpResponse, web};

use super::body::JsonObject;
use super::response::parse_id;
use crate::auth::Principal;
use crate::catalog::schemas as service;
use crate::domain::Scope;
use crate::domain::metadata_schema::{SchemaChange, SchemaTarget};
use crate::error::ApiError;
use crate::openapi::responses::*;
use crate::openapi::schemas::{
    MetadataSchema, MetadataSchemaChange, MetadataSchemaDryRun, MetadataSchemaTrial,
};
use crate::startup::AppState;

fn parse_path(path: &(String, String)) -> Result<(uuid::Uuid, SchemaTarget), ApiError> {
    let project = parse_id(&path.0)?;
    let target = SchemaTarget::parse(&path.1).map_err(|error| ApiError::BadPath(error.message))?;
    Ok((project, target))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/schemas/{char_source_type}",
    operation_id = "get_metadata_schema",
    tag = "schemas",
    summary = "A project's current metadata schema for a data type",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("char_source_type" = String, Path,
            description = "A `char_source_type`, or `default` (for types without their own)."),
    ),
    responses(
        (status = 200, description = "The current version.", body = MetadataSchema),
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
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (project, target) = parse_path(&path)?;
    let view = service::current(&state.pool, &principal, project, target).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/schemas/{char_source_type}/versions",
    operation_id = "list_metadata_schema_versions",
    tag = "schemas",
    summary = "The earlier versions of a metadata schema",
    description = "Every version a later PUT (or a DELETE) replaced, newest first, each with \
        its `retired_at`. An entry's history names the version each change was checked \
        against.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("char_source_type" = String, Path, description = "A `char_source_type`, or `default`."),
    ),
    responses(
        (status = 200, description = "The earlier versions.", body = Vec<MetadataSchema>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn versions(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (project, target) = parse_path(&path)?;
    let versions = service::versions(&state.pool, &principal, project, target).await?;
    Ok(HttpResponse::Ok().json(versions))
}

#[utoipa::path(
    put,
    path = "/projects/{project_id}/schemas/{char_source_type}",
    operation_id = "put_metadata_schema",
    tag = "schemas",
    summary = "Set a project's metadata schema for a data type (admins)",
    description = "A JSON Schema (2020-12 unless `$schema` names another draft) for the \
        `metadata` of the project's entries of this type (`default`: of the types without \
        a schema of their own). Each PUT is a new version. `enforce`: a write (POST, PATCH, \
        PUT, metadata PATCH/PUT, bulk, `/v2`) whose resulting metadata does not validate is \
        a 422 listing every violation (`errors[].path` a JSON Pointer, `message`, \
        `keyword`) and nothing is stored. `report`: the write is stored and the entry \
        carries `metadata_valid: false` and its `metadata_errors`. Stored entries are \
        rechecked in the background; `rechecking` says how many. `{\"x-dimension\": \
        \"temperature\"}` makes a property a quantity (`{\"value\": <number>, \"unit\": \
        \"degC\"}`) whose unit must be one of that dimension's. A `$ref` may only point \
        into the schema itself: nothing is ever fetched. A schema that does not compile, or \
        is larger, deeper or expands further than `limits.schema` allows, is a 422 naming \
        the problem.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("char_source_type" = String, Path, description = "A `char_source_type`, or `default`."),
    ),
    request_body = MetadataSchemaChange,
    responses(
        (status = 200, description = "The new version.", body = MetadataSchema),
        (status = 400, response = BadRequest),
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
pub async fn put(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, target) = parse_path(&path)?;
    let change = SchemaChange::from_json(body, true)?;
    let view = service::put(
        &state.pool,
        &state.schemas,
        &principal,
        project,
        target,
        &change,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete,
    path = "/projects/{project_id}/schemas/{char_source_type}",
    operation_id = "delete_metadata_schema",
    tag = "schemas",
    summary = "Remove a project's metadata schema for a data type (admins)",
    description = "Its versions stay listed under `/versions`. The entries it was for are \
        rechecked against what applies now (the project's `default`, or nothing).",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("char_source_type" = String, Path, description = "A `char_source_type`, or `default`."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, target) = parse_path(&path)?;
    service::delete(&state.pool, &state.schemas, &principal, project, target).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/projects/{project_id}/schemas/{char_source_type}/check",
    operation_id = "check_metadata_schema",
    tag = "schemas",
    summary = "Try a candidate metadata schema on the stored entries (admins)",
    description = "Checks the candidate against every stored entry it would be for and \
        answers how many were checked, how many would fail, and the first 20 failing (by \
        `data_id`) with their violations. Stores nothing.",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("char_source_type" = String, Path, description = "A `char_source_type`, or `default`."),
    ),
    request_body = MetadataSchemaTrial,
    responses(
        (status = 200, description = "What the candidate would say.", body = MetadataSchemaDryRun),
        (status = 400, response = BadRequest),
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
pub async fn check(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, target) = parse_path(&path)?;
    let candidate = SchemaChange::from_json(body, false)?;
    let answer = service::dry_run(
        &state.pool,
        &state.schemas,
        &principal,
        project,
        target,
        &candidate.schema,
    )
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}
