//! `/v2/files`: data entries as Seven Bridges files, through the same catalogue
//! operations as the native routes.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::shape::{ProjectIds, base_url, file_fields, file_id, file_json, select, without_nulls};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::catalog::projects;
use crate::db;
use crate::db::data_entries::MetadataWrite;
use crate::domain::file_query::FileQuery;
use crate::domain::{
    DataEntry, DataEntryPatch, FieldError, FieldSelection, MetadataPatch, Scope, tags,
};
use crate::error::ApiError;
use crate::openapi::params::MetadataKeys;
use crate::openapi::schemas::MetadataDocument;
use crate::openapi::v2::*;
use crate::routes::body::{JsonBody, JsonObject};
use crate::routes::response::{fields_param, if_match, not_modified, query_pairs};
use crate::startup::AppState;

/// Members a `PATCH /v2/files/{id}` may set.
const WRITABLE: &[&str] = &["name", "metadata", "tags"];

/// `GET /v2/files/{id}`: the file object.
#[utoipa::path(
    get,
    path = "/v2/files/{file_id}",
    operation_id = "v2_get_file",
    tag = "v2 files",
    summary = "Get a file",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), SbgFileFields),
    responses(
        (status = 200, description = "The file, with the entry's `ETag`.", body = SbgFile,
            headers(("ETag" = String, description = "The entry's revision in quotes, as the native entry's."))),
        (status = 304, description = "`If-None-Match` names the current ETag."),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = file_id(&path)?;
    let fields = file_fields(&query_pairs(&request))?;
    let entry = catalog::read(&state, &principal, data_id).await?;
    // The same validator as the native entry: a client may revalidate through either.
    if not_modified(&request, &entry.etag()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, entry.etag()))
            .finish());
    }
    let projects = project_ids(&state, &principal, [&entry]).await?;
    let file = select(&fields, file_json(&entry, &base_url(&request), &projects));
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, entry.etag()))
        .json(file))
}

/// `GET /v2/files`: one page `{href, items, links}` and the total in
/// `X-Total-Matching-Query`; `links` holds `next`/`prev` pages as absolute URLs.
#[utoipa::path(
    get,
    path = "/v2/files",
    operation_id = "v2_list_files",
    tag = "v2 files",
    summary = "List files",
    params(SbgFileQuery),
    responses(
        (status = 200, description = "A page of files.", body = SbgFilePage,
            headers(("X-Total-Matching-Query" = i64, description = "Files matching, over all pages."))),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let fields = file_fields(&pairs)?;
    let mut query = FileQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::BadQuery)?;
    let mut projects = ProjectIds::default();
    if let Some((owner, slug)) = query.project_path() {
        // A project the caller cannot read is unknown to it, like a missing one (404).
        let view = projects::find(&state.pool, &principal, owner, slug).await?;
        let id = format!("{}/{}", view.project.created_by, view.project.slug);
        query.project_id = Some(view.project.project_id);
        projects = ProjectIds::one(view.project.project_id, id);
    }
    if let Some(folder) = &query.parent {
        return Err(ApiError::NotFound {
            what: "folder",
            id: folder.clone(),
        });
    }
    if let Some(dataset) = &query.dataset {
        return Err(ApiError::NotFound {
            what: "dataset",
            id: dataset.clone(),
        });
    }
    let entries = db::files::list(&state.pool, principal.access(), &query).await?;
    let total = db::files::count(&state.pool, principal.access(), &query).await?;
    let mut conn = state.pool.acquire().await?;
    projects
        .load(
            &mut conn,
            principal.access(),
            entries.iter().map(|entry| entry.project_id),
        )
        .await?;
    drop(conn);

    let base = base_url(&request);
    let page = |offset: i64| format!("{base}/files?{}", page_query(&pairs, offset, query.limit));
    let mut links = Vec::new();
    if query.offset + (entries.len() as i64) < total && !entries.is_empty() {
        let next = page(query.offset + query.limit);
        links.push(json!({"href": next, "rel": "next", "method": "GET"}));
    }
    if query.offset > 0 {
        let previous = page((query.offset - query.limit).max(0));
        links.push(json!({"href": previous, "rel": "prev", "method": "GET"}));
    }
    let items: Vec<Value> = entries
        .iter()
        .map(|entry| select(&fields, file_json(entry, &base, &projects)))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Matching-Query", total))
        .json(json!({"href": page(query.offset), "items": items, "links": links})))
}

/// The `/v2` ids of `entries`' projects: one more small statement.
async fn project_ids(
    state: &AppState,
    principal: &Principal,
    entries: impl IntoIterator<Item = &DataEntry>,
) -> Result<ProjectIds, ApiError> {
    let mut projects = ProjectIds::default();
    let mut conn = state.pool.acquire().await?;
    projects
        .load(
            &mut conn,
            principal.access(),
            entries.into_iter().map(|entry| entry.project_id),
        )
        .await?;
    Ok(projects)
}

/// The request's own query with `offset` and `limit` set: `href`s the client re-fetches.
pub(super) fn page_query(pairs: &[(String, String)], offset: i64, limit: i64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("offset", &offset.to_string());
    query.append_pair("limit", &limit.to_string());
    for (name, value) in pairs
        .iter()
        .filter(|(name, _)| name != "offset" && name != "limit")
    {
        query.append_pair(name, value);
    }
    query.finish()
}

/// `PATCH /v2/files/{id}` with `{name?, metadata?, tags?}`: metadata and tags are
/// replaced; `{}` changes nothing. The file object back.
#[utoipa::path(
    patch,
    path = "/v2/files/{file_id}",
    operation_id = "v2_update_file",
    tag = "v2 files",
    summary = "Update a file",
    description = "Sets the name and replaces the metadata and tags; `{}` changes nothing.",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), SbgFileFields, SbgIfMatch),
    request_body(content = SbgFilePatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The file after the change.", body = SbgFile),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = file_id(&path)?;
    let fields = file_fields(&query_pairs(&request))?;
    let condition = if_match(&request)?;
    let mut errors = Vec::new();
    let mut native = Map::new();
    let mut tags = None;
    let mut metadata = None;
    for (key, value) in body {
        match key.as_str() {
            // The name is the entry's raw_name, checked by the same rules.
            "name" => {
                native.insert("raw_name".into(), value);
            }
            "metadata" => match MetadataPatch::parse("metadata", value, &state.metadata_limits) {
                Ok(document) => metadata = Some(without_nulls(document.into_value())),
                Err(error) => errors.push(error),
            },
            "tags" => match tags::parse("tags", value) {
                Ok(parsed) => tags = Some(parsed),
                Err(error) => errors.push(error),
            },
            _ if super::shape::FILE_FIELDS.contains(&key.as_str()) => {
                errors.push(FieldError::read_only(&key))
            }
            _ => errors.push(FieldError::unknown_field(&key, WRITABLE)),
        }
    }
    let mut patch = match DataEntryPatch::from_json(native, &state.metadata_limits) {
        Ok(patch) if errors.is_empty() => patch,
        Ok(_) => return Err(ApiError::Invalid(errors)),
        Err(more) => return Err(ApiError::Invalid(errors.into_iter().chain(more).collect())),
    };
    patch.tags = tags;
    let write = match &metadata {
        Some(document) => MetadataWrite::Replace(document),
        None => MetadataWrite::Merge(None),
    };
    let mut conn = state.pool.acquire().await?;
    let entry = catalog::update(
        &mut conn,
        &state,
        &principal,
        data_id,
        &patch,
        write,
        condition.as_ref(),
    )
    .await?;
    let mut projects = ProjectIds::default();
    projects
        .load(&mut conn, principal.access(), [entry.project_id])
        .await?;
    let file = select(&fields, file_json(&entry, &base_url(&request), &projects));
    Ok(HttpResponse::Ok().json(file))
}

/// `DELETE /v2/files/{id}`: 204.
#[utoipa::path(
    delete,
    path = "/v2/files/{file_id}",
    operation_id = "v2_delete_file",
    tag = "v2 files",
    summary = "Delete a file",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), SbgIfMatch),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = file_id(&path)?;
    let condition = if_match(&request)?;
    let mut conn = state.pool.acquire().await?;
    catalog::delete(&mut conn, &state, &principal, data_id, condition.as_ref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?fields=` on `/metadata`: which keys to return (any names).
fn metadata_keys(request: &HttpRequest) -> Result<FieldSelection, ApiError> {
    let pairs = query_pairs(request);
    FieldSelection::parse(fields_param(&pairs), None)
        .map_err(|error| ApiError::BadQuery(vec![error]))
}

/// `GET /v2/files/{id}/metadata`: the metadata object.
#[utoipa::path(
    get,
    path = "/v2/files/{file_id}/metadata",
    operation_id = "v2_get_file_metadata",
    tag = "v2 files",
    summary = "Get a file's metadata",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), MetadataKeys),
    responses(
        (status = 200, description = "The metadata.", body = MetadataDocument),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn metadata(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = file_id(&path)?;
    let keys = metadata_keys(&request)?;
    let entry = catalog::read(&state, &principal, data_id).await?;
    Ok(HttpResponse::Ok().json(keys.apply(entry.metadata)))
}

/// `PATCH /v2/files/{id}/metadata`: merges (`null` deletes a key, `{}` changes nothing)
/// and answers the full resulting metadata, as the seed's example shows.
#[utoipa::path(
    patch,
    path = "/v2/files/{file_id}/metadata",
    operation_id = "v2_merge_file_metadata",
    tag = "v2 files",
    summary = "Merge into a file's metadata",
    description = "`null` deletes a key, `{}` changes nothing; the whole resulting metadata \
        back.",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), MetadataKeys, SbgIfMatch),
    request_body(content = MetadataDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "The metadata after the merge.", body = MetadataDocument),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn merge_metadata(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let document =
        MetadataPatch::parse("metadata", Value::Object(body), &state.metadata_limits)?.into_value();
    write_metadata(
        principal,
        state,
        request,
        path,
        MetadataWrite::Merge(Some(&document)),
    )
    .await
}

/// `PUT /v2/files/{id}/metadata`: replaces the whole document; the result back.
#[utoipa::path(
    put,
    path = "/v2/files/{file_id}/metadata",
    operation_id = "v2_replace_file_metadata",
    tag = "v2 files",
    summary = "Replace a file's metadata",
    description = "`null` members are left out.",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), MetadataKeys, SbgIfMatch),
    request_body(content = MetadataDocument, content_type = "application/json"),
    responses(
        (status = 200, description = "The new metadata.", body = MetadataDocument),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn replace_metadata(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let document =
        MetadataPatch::parse("metadata", Value::Object(body), &state.metadata_limits)?.into_value();
    let document = without_nulls(document);
    write_metadata(
        principal,
        state,
        request,
        path,
        MetadataWrite::Replace(&document),
    )
    .await
}

async fn write_metadata(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    write: MetadataWrite<'_>,
) -> Result<HttpResponse, ApiError> {
    let data_id = file_id(&path)?;
    let keys = metadata_keys(&request)?;
    let condition = if_match(&request)?;
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
    Ok(HttpResponse::Ok().json(keys.apply(entry.metadata)))
}

/// `PUT /v2/files/{id}/tags` with a JSON array: replaces the tags; the tags back (the
/// client insists on an array).
#[utoipa::path(
    put,
    path = "/v2/files/{file_id}/tags",
    operation_id = "v2_replace_file_tags",
    tag = "v2 files",
    summary = "Replace a file's tags",
    params(("file_id" = String, Path, description = "The file's `id` (the entry's `data_id`); anything else is a 404."), SbgIfMatch),
    request_body(content = SbgTags, content_type = "application/json"),
    responses(
        (status = 200, description = "The tags now.", body = SbgTags),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 404, response = SbgNotFound),
        (status = 409, response = SbgConflict),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn replace_tags(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = file_id(&path)?;
    let condition = if_match(&request)?;
    let patch = DataEntryPatch {
        tags: Some(tags::parse("tags", body)?),
        ..DataEntryPatch::default()
    };
    let mut conn = state.pool.acquire().await?;
    let entry = catalog::update(
        &mut conn,
        &state,
        &principal,
        data_id,
        &patch,
        MetadataWrite::Merge(None),
        condition.as_ref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(entry.tags))
}
