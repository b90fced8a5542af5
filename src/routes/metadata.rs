//! `/data_entries/{data_id}/metadata`: the metadata document alone. PATCH merges
//! (RFC 7396), PUT replaces; `?fields=` picks keys.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::body::JsonObject;
use super::response::{fields_param, if_match, not_modified, parse_id, query_pairs, with_etag};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::db::data_entries::MetadataWrite;
use crate::domain::{DataEntry, DataEntryPatch, FieldSelection, MetadataPatch, Scope};
use crate::error::ApiError;
use crate::openapi::params::{IfMatch as IfMatchHeader, IfNoneMatch, MetadataKeys};
use crate::openapi::responses::*;
use crate::openapi::schemas::MetadataDocument;
use crate::startup::AppState;

fn key_selection(request: &HttpRequest) -> Result<FieldSelection, ApiError> {
    let pairs = query_pairs(request);
    FieldSelection::parse(fields_param(&pairs), None).map_err(|e| ApiError::BadQuery(vec![e]))
}

fn metadata_response(entry: &DataEntry, keys: &FieldSelection) -> HttpResponse {
    with_etag(StatusCode::OK, entry, &keys.apply(entry.metadata.clone()))
}

#[utoipa::path(
    get,
    path = "/data_entries/{data_id}/metadata",
    operation_id = "get_metadata",
    tag = "metadata",
    summary = "Get an entry's metadata",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        MetadataKeys,
        IfNoneMatch,
    ),
    responses(
        (status = 200, description = "The metadata document.", body = MetadataDocument,
            headers(("ETag" = String, description = "The entry's revision, quoted."))),
        (status = 304, description = "`If-None-Match` named the current ETag.",
            headers(("ETag" = String))),
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
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = parse_id(&path)?;
    let keys = key_selection(&request)?;
    let entry = catalog::read(&state, &principal, data_id).await?;
    if not_modified(&request, &entry.etag()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, entry.etag()))
            .finish());
    }
    Ok(metadata_response(&entry, &keys))
}

#[utoipa::path(
    patch,
    path = "/data_entries/{data_id}/metadata",
    operation_id = "merge_metadata",
    tag = "metadata",
    summary = "Merge into an entry's metadata",
    description = "The body is an RFC 7396 merge patch: objects merge deeply, `null` deletes \
        a key, anything else (arrays too) replaces. Atomic; concurrent merges never lose each \
        other's keys.",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        MetadataKeys,
        IfMatchHeader,
    ),
    request_body(content(
        (MetadataDocument = "application/merge-patch+json"),
        (MetadataDocument = "application/json"),
    )),
    responses(
        (status = 200, description = "The metadata after the merge.", body = MetadataDocument,
            headers(("ETag" = String, description = "The entry's revision, quoted."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 412, response = PreconditionFailed),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 428, response = PreconditionRequired),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn merge(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    write(principal, state, request, path, body, false).await
}

#[utoipa::path(
    put,
    path = "/data_entries/{data_id}/metadata",
    operation_id = "replace_metadata",
    tag = "metadata",
    summary = "Replace an entry's metadata",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        MetadataKeys,
        IfMatchHeader,
    ),
    request_body(content = MetadataDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "The new metadata.", body = MetadataDocument,
            headers(("ETag" = String, description = "The entry's revision, quoted."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 428, response = PreconditionRequired),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn replace(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    write(principal, state, request, path, body, true).await
}

async fn write(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
    replace: bool,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = parse_id(&path)?;
    let keys = key_selection(&request)?;
    let condition = if_match(&request)?;
    let document =
        MetadataPatch::parse("metadata", Value::Object(body), &state.metadata_limits)?.into_value();
    let write = if replace {
        MetadataWrite::Replace(&document)
    } else {
        MetadataWrite::Merge(Some(&document))
    };
    let mut conn = state.pool.acquire().await?;
    let entry = catalog::update(
        &mut conn,
        &state,
        &principal,
        data_id,
        &DataEntryPatch::default(),
        write,
        condition.as_ref(),
    )
    .await?;
    Ok(metadata_response(&entry, &keys))
}
