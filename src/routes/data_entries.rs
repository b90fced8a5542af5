use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use uuid::Uuid;

use super::body::JsonObject;
use super::response::{entry_fields, not_modified, parse_id, query_pairs, with_etag};
use crate::auth::Principal;
use crate::db;
use crate::db::data_entries::MetadataWrite;
use crate::domain::search::Cursor;
use crate::domain::{DataEntryPatch, FieldError, NewDataEntry, Scope, SearchQuery};
use crate::error::ApiError;
use crate::startup::AppState;

/// `POST /data_entries`: 201, `Location`, the full entry.
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let fields = entry_fields(&request)?;
    let entry = NewDataEntry::from_json(body, &state.metadata_limits)?;
    if let Some(sample) = entry.physical_sample_id {
        ensure_sample_usable(&state, &principal, sample).await?;
    }
    let entry = db::data_entries::insert(&state.pool, &principal.user_id, &entry).await?;
    let location = format!("/data_entries/{}", entry.data_id);
    let mut response = with_etag(StatusCode::CREATED, &entry, &fields.apply(entry.to_json()));
    response.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&location).expect("a path with a UUID is a valid header"),
    );
    Ok(response)
}

/// `GET /data_entries/{data_id}`: the full entry, with `ETag` (and 304 on `If-None-Match`).
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = parse_id(&path)?;
    let fields = entry_fields(&request)?;
    let entry = db::data_entries::get(&state.pool, &principal.user_id, data_id)
        .await?
        .ok_or_else(|| not_found(data_id))?;
    if not_modified(&request, &entry.etag()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, entry.etag()))
            .finish());
    }
    Ok(with_etag(
        StatusCode::OK,
        &entry,
        &fields.apply(entry.to_json()),
    ))
}

/// `PATCH /data_entries/{data_id}`: a partial update, applied atomically; the full entry back.
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = parse_id(&path)?;
    let fields = entry_fields(&request)?;
    let patch = DataEntryPatch::from_json(body, &state.metadata_limits)?;
    if let crate::domain::Patch::Set(sample) = patch.physical_sample_id {
        ensure_sample_usable(&state, &principal, sample).await?;
    }
    let metadata = patch
        .metadata
        .as_ref()
        .map(|m| m.as_object().clone().into());
    let entry = db::data_entries::update(
        &state.pool,
        &principal.user_id,
        data_id,
        &patch,
        MetadataWrite::Merge(metadata.as_ref()),
        &state.metadata_limits,
    )
    .await?
    .ok_or_else(|| not_found(data_id))?;
    Ok(with_etag(
        StatusCode::OK,
        &entry,
        &fields.apply(entry.to_json()),
    ))
}

/// `DELETE /data_entries/{data_id}`: 204.
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = parse_id(&path)?;
    if db::data_entries::delete(&state.pool, &principal.user_id, data_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found(data_id))
    }
}

/// `GET /data_entries`: a JSON array; the next page in `Link: <…>; rel="next"`, the total
/// in `X-Total-Count`.
pub async fn search(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let fields = entry_fields(&request)?;
    let pairs = query_pairs(&request);
    let query = SearchQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let (entries, has_more) =
        db::data_entries::search(&state.pool, &principal.user_id, &query).await?;
    let total = db::data_entries::count(&state.pool, &principal.user_id, &query).await?;

    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", total));
    if let (true, Some(last)) = (has_more, entries.last()) {
        let cursor = Cursor {
            key: query.sort,
            descending: query.descending,
            after_value: match query.sort {
                crate::domain::SortKey::UploadDatetime => last.upload_datetime,
                crate::domain::SortKey::LastUpdated => last.last_updated,
            },
            after_id: last.data_id,
        };
        response.insert_header((header::LINK, next_link(&request, &pairs, &cursor)));
    }
    let body: Vec<Value> = entries
        .iter()
        .map(|entry| fields.apply(entry.to_json()))
        .collect();
    Ok(response.json(body))
}

/// The same request with `cursor` pointing past this page.
fn next_link(request: &HttpRequest, pairs: &[(String, String)], cursor: &Cursor) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(name, _)| name != "cursor") {
        query.append_pair(name, value);
    }
    query.append_pair("cursor", &cursor.encode());
    let connection = request.connection_info();
    format!(
        "<{}://{}{}?{}>; rel=\"next\"",
        connection.scheme(),
        connection.host(),
        request.path(),
        query.finish()
    )
}

/// A sample can be linked only if it exists and the caller owns it; anything else is
/// reported as the same unknown sample.
pub(super) async fn ensure_sample_usable(
    state: &AppState,
    principal: &Principal,
    sample: Uuid,
) -> Result<(), ApiError> {
    match db::physical_samples::get(&state.pool, &principal.user_id, sample).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::Invalid(vec![FieldError::new(
            "physical_sample_id",
            "unknown_physical_sample",
            format!("no physical sample with id '{sample}'"),
        )])),
    }
}

pub(super) fn not_found(data_id: Uuid) -> ApiError {
    ApiError::NotFound {
        what: "data entry",
        id: data_id.to_string(),
    }
}
