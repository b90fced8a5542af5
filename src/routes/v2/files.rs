//! `/v2/files`: data entries as Seven Bridges files, through the same catalogue
//! operations as the native routes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::shape::{base_url, file_fields, file_id, file_json, select, without_nulls};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::db;
use crate::db::data_entries::MetadataWrite;
use crate::domain::file_query::FileQuery;
use crate::domain::{DataEntryPatch, FieldError, FieldSelection, MetadataPatch, Scope, tags};
use crate::error::ApiError;
use crate::routes::body::{JsonBody, JsonObject};
use crate::routes::response::{fields_param, if_match, query_pairs};
use crate::startup::AppState;

/// Members a `PATCH /v2/files/{id}` may set.
const WRITABLE: &[&str] = &["name", "metadata", "tags"];

/// `GET /v2/files/{id}`: the file object.
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = file_id(&path)?;
    let fields = file_fields(&query_pairs(&request))?;
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    let entry = catalog::get(&mut conn, &principal, data_id).await?;
    let file = select(&fields, file_json(&entry, &base_url(&request)));
    Ok(HttpResponse::Ok().json(file))
}

/// `GET /v2/files`: one page `{href, items, links}` and the total in
/// `X-Total-Matching-Query`; `links` holds `next`/`prev` pages as absolute URLs.
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let fields = file_fields(&pairs)?;
    let query = FileQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::BadQuery)?;
    if let Some(project) = query.project.as_ref().filter(|p| **p != principal.user_id) {
        // Someone else's project is unknown to this caller, like a missing one.
        return Err(ApiError::NotFound {
            what: "project",
            id: project.clone(),
        });
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
    let entries = db::files::list(&state.pool, &principal.user_id, &query).await?;
    let total = db::files::count(&state.pool, &principal.user_id, &query).await?;

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
        .map(|entry| select(&fields, file_json(entry, &base)))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Matching-Query", total))
        .json(json!({"href": page(query.offset), "items": items, "links": links})))
}

/// The request's own query with `offset` and `limit` set: `href`s the client re-fetches.
fn page_query(pairs: &[(String, String)], offset: i64, limit: i64) -> String {
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
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
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
    let file = select(&fields, file_json(&entry, &base_url(&request)));
    Ok(HttpResponse::Ok().json(file))
}

/// `DELETE /v2/files/{id}`: 204.
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = file_id(&path)?;
    let condition = if_match(&request)?;
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
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
pub async fn metadata(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = file_id(&path)?;
    let keys = metadata_keys(&request)?;
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    let entry = catalog::get(&mut conn, &principal, data_id).await?;
    Ok(HttpResponse::Ok().json(keys.apply(entry.metadata)))
}

/// `PATCH /v2/files/{id}/metadata`: merges (`null` deletes a key, `{}` changes nothing)
/// and answers the full resulting metadata, as the seed's example shows.
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
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
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
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
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
