//! Shared pieces of entry responses: path ids, `?fields=`, ETags.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::query_limits::exceeds_a_limit;
use crate::domain::{DataEntry, FieldError, FieldSelection, IfMatch};
use crate::error::ApiError;

pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::BadPath(format!("'{raw}' is not a UUID")))
}

/// The decoded query string as pairs; repeated keys stay repeated.
pub fn query_pairs(request: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(request.query_string().as_bytes())
        .into_owned()
        .collect()
}

pub fn fields_param(pairs: &[(String, String)]) -> Option<&str> {
    pairs
        .iter()
        .find(|(name, _)| name == "fields")
        .map(|(_, value)| value.as_str())
}

/// The problem for bad search parameters (of search, key discovery and facets alike): a
/// limit, a malformed metadata filter or metadata path in `order_by` is a 400; other bad
/// values stay the 422 the Atomscale SDK's FastAPI answered (it has no metadata filters).
pub fn search_query_error(errors: Vec<FieldError>) -> ApiError {
    let metadata = errors.iter().any(|e| {
        e.field.starts_with("metadata.") || e.field == "order_by" && e.code == "invalid_value"
    });
    if exceeds_a_limit(&errors) || metadata {
        ApiError::BadQuery(errors)
    } else {
        ApiError::Invalid(errors)
    }
}

/// `?fields=` for entry responses: names must be entry fields (400 otherwise).
pub fn entry_fields(request: &HttpRequest) -> Result<FieldSelection, ApiError> {
    let pairs = query_pairs(request);
    FieldSelection::parse(fields_param(&pairs), Some(DataEntry::FIELDS))
        .map_err(|error| ApiError::BadQuery(vec![error]))
}

/// Whether `If-None-Match` already names the entry's current ETag.
pub fn not_modified(request: &HttpRequest, etag: &str) -> bool {
    request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
        })
}

/// A JSON response about one entry, carrying its ETag.
pub fn with_etag(status: StatusCode, entry: &DataEntry, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, entry.etag()))
        .json(body)
}

/// An entry response carrying its ETag; the whole entry is written straight from the row.
pub fn entry_response(
    status: StatusCode,
    entry: &DataEntry,
    fields: &FieldSelection,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::ETAG, entry.etag()));
    if fields.is_all() {
        response.json(entry.body())
    } else {
        response.json(fields.apply(entry.to_json()))
    }
}

/// The `If-Match` header, if any.
pub fn if_match(request: &HttpRequest) -> Result<Option<IfMatch>, ApiError> {
    request
        .headers()
        .get(header::IF_MATCH)
        .map(|value| {
            value
                .to_str()
                .map(IfMatch::parse)
                .map_err(|_| ApiError::BadHeader("If-Match is not visible ASCII".into()))
        })
        .transpose()
}
