//! `POST /v2/bulk/files/{get,delete,update,edit}`: one result per item, in request
//! order, `{"resource": …}` or `{"error": …}`, with 200 even when some items failed (the
//! client does not match results by id). Every item goes through the same catalogue
//! operation as a single request and is atomic on its own.
//!
//! Before any work (see `routes::bulk`): at most `writes.bulk_max_items` items, and no
//! more than the user's rate-limit bucket holds (400 `too_many_items`); no file named by two
//! items (400 `duplicate_item`); one token per item (429 when the bucket cannot pay now;
//! bulk get draws from the read bucket, the others from the write bucket).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::sbg_error;
use super::shape::{FILE_FIELDS, ProjectIds, base_url, file_id, into_file_json, without_nulls};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::db::data_entries::MetadataWrite;
use crate::domain::{DataEntryPatch, FieldError, MetadataLimits, MetadataPatch, Scope, tags};
use crate::error::ApiError;
use crate::openapi::v2::*;
use crate::routes::body::JsonObject;
use crate::routes::bulk::{self as limits, JsonItems};
use crate::startup::AppState;

/// `{"file_ids": [...]}`: each file, or why not.
#[utoipa::path(
    post,
    path = "/v2/bulk/files/get",
    operation_id = "v2_bulk_get_files",
    tag = "v2 files",
    summary = "Get many files",
    description = "One result per item, in request order, `resource` or `error`; 200 even \
        when some items failed. Each item is atomic on its own. Before any work: a file \
        named by two items is a 400 (`duplicate_item`, naming it and its positions); more \
        items than `writes.bulk_max_items` or than the user's rate-limit bucket holds, a 400 \
        (`too_many_items`, naming the limit). Each item costs one rate-limit token (429 when \
        the bucket cannot pay now).",
    request_body(content = SbgFileIds, content_type = "application/json"),
    responses(
        (status = 200, description = "Each item's outcome.", body = SbgBulkResults),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let ids = file_ids(body, &state, &request, &principal)?;
    let base = base_url(&request);
    let mut conn = state.pool.acquire().await?;
    let mut items = JsonItems::new(ITEMS_OPENING);
    // Files of one project (most bulk requests) cost one lookup of its `/v2` id.
    let mut projects = ProjectIds::default();
    for (_, data_id) in ids {
        let outcome = match data_id {
            Ok(data_id) => match catalog::get(&mut conn, &principal, data_id).await {
                Ok((entry, _)) => projects
                    .load(&mut conn, principal.access(), [entry.project_id])
                    .await
                    .map(|()| into_file_json(entry, &base, &projects)),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        items.push(&Record::of(outcome))?;
    }
    Ok(items.respond(ITEMS_CLOSING))
}

/// `{"file_ids": [...]}`: deletes each; a deleted file's record is `{"resource": {"id"}}`.
#[utoipa::path(
    post,
    path = "/v2/bulk/files/delete",
    operation_id = "v2_bulk_delete_files",
    tag = "v2 files",
    summary = "Delete many files",
    description = "One result per item, in request order, `resource` or `error`; 200 even \
        when some items failed. Each item is atomic on its own. Before any work: a file \
        named by two items is a 400 (`duplicate_item`, naming it and its positions); more \
        items than `writes.bulk_max_items` or than the user's rate-limit bucket holds, a 400 \
        (`too_many_items`, naming the limit). Each item costs one rate-limit token (429 when \
        the bucket cannot pay now).",
    request_body(content = SbgFileIds, content_type = "application/json"),
    responses(
        (status = 200, description = "Each item's outcome.", body = SbgBulkResults),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let ids = file_ids(body, &state, &request, &principal)?;
    let mut conn = state.pool.acquire().await?;
    let mut items = JsonItems::new(ITEMS_OPENING);
    for (id, data_id) in ids {
        let outcome = match data_id {
            Ok(data_id) => catalog::delete(&mut conn, &state, &principal, data_id, None)
                .await
                .map(|()| json!({ "id": id })),
            Err(error) => Err(error),
        };
        items.push(&Record::of(outcome))?;
    }
    Ok(items.respond(ITEMS_CLOSING))
}

/// `{"items": [{id, name, tags, metadata}]}`: replaces each file's name, tags and
/// metadata; `null` tags or metadata mean empty ("erase omitted parameters").
#[utoipa::path(
    post,
    path = "/v2/bulk/files/update",
    operation_id = "v2_bulk_update_files",
    tag = "v2 files",
    summary = "Replace many files' name, tags and metadata",
    description = "One result per item, in request order, `resource` or `error`; 200 even \
        when some items failed. Each item is atomic on its own. Before any work: a file \
        named by two items is a 400 (`duplicate_item`, naming it and its positions); more \
        items than `writes.bulk_max_items` or than the user's rate-limit bucket holds, a 400 \
        (`too_many_items`, naming the limit). Each item costs one rate-limit token (429 when \
        the bucket cannot pay now).",
    request_body(content = SbgBulkFiles, content_type = "application/json"),
    responses(
        (status = 200, description = "Each item's outcome.", body = SbgBulkResults),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    write(principal, state, request, body, Mode::Replace).await
}

/// `{"items": [{id, name, tags, metadata}]}`: merges into each file; `null` members are
/// left alone and a `null` metadata value deletes that key ("preserve omitted parameters").
#[utoipa::path(
    post,
    path = "/v2/bulk/files/edit",
    operation_id = "v2_bulk_edit_files",
    tag = "v2 files",
    summary = "Merge into many files",
    description = "One result per item, in request order, `resource` or `error`; 200 even \
        when some items failed. Each item is atomic on its own. Before any work: a file \
        named by two items is a 400 (`duplicate_item`, naming it and its positions); more \
        items than `writes.bulk_max_items` or than the user's rate-limit bucket holds, a 400 \
        (`too_many_items`, naming the limit). Each item costs one rate-limit token (429 when \
        the bucket cannot pay now).",
    request_body(content = SbgBulkFiles, content_type = "application/json"),
    responses(
        (status = 200, description = "Each item's outcome.", body = SbgBulkResults),
        (status = 400, response = SbgBadRequest),
        (status = 401, response = SbgUnauthorized),
        (status = 403, response = SbgForbidden),
        (status = 415, response = SbgUnsupportedMediaType),
        (status = 429, response = SbgTooManyRequests),
        (status = 503, response = SbgServiceUnavailable),
    ),
)]
pub async fn edit(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    write(principal, state, request, body, Mode::Merge).await
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Replace,
    Merge,
}

async fn write(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonObject(mut body): JsonObject,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let Some(Value::Array(requested)) = body.remove("items") else {
        return Err(FieldError::invalid_type("items", "a JSON array of files").into());
    };
    limits::check_count(&state, &request, "items", requested.len())?;
    let changes: Vec<Result<Change, ApiError>> = requested
        .into_iter()
        .map(|item| parse_item(item, mode, &state.metadata_limits))
        .collect();
    let ids = changes.iter().enumerate().filter_map(|(position, change)| {
        change
            .as_ref()
            .ok()
            .map(|change| (position, change.data_id))
    });
    limits::refuse_repeats(ids, |position| format!("items[{position}].id"))?;
    limits::charge(&state, &request, &principal, changes.len())?;
    let base = base_url(&request);
    let mut conn = state.pool.acquire().await?;
    let mut items = JsonItems::new(ITEMS_OPENING);
    // Files of one project (most bulk requests) cost one lookup of its `/v2` id.
    let mut projects = ProjectIds::default();
    for change in changes {
        let outcome = match change {
            Ok(change) => {
                let write = match &change.metadata {
                    Some(document) if mode == Mode::Replace => MetadataWrite::Replace(document),
                    document => MetadataWrite::Merge(document.as_ref()),
                };
                match catalog::update(
                    &mut conn,
                    &state,
                    &principal,
                    change.data_id,
                    &change.patch,
                    write,
                    None,
                )
                .await
                {
                    Ok(entry) => projects
                        .load(&mut conn, principal.access(), [entry.project_id])
                        .await
                        .map(|()| into_file_json(entry, &base, &projects)),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        };
        items.push(&Record::of(outcome))?;
    }
    Ok(items.respond(ITEMS_CLOSING))
}

/// The answer is `{"items": [...]}`, written item by item.
const ITEMS_OPENING: &str = r#"{"items":["#;
const ITEMS_CLOSING: &str = "]}";

/// One bulk result in the shape the client reads: `{"resource": …}` or `{"error": …}`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Record {
    Resource(Value),
    Error(Value),
}

impl Record {
    fn of(outcome: Result<Value, ApiError>) -> Self {
        match outcome {
            Ok(resource) => Record::Resource(resource),
            Err(error) => Record::Error(sbg_error(&error).1),
        }
    }
}

/// A file id as sent, and the entry it names (or the 404 of an id that names none).
type RequestedFile = (String, Result<Uuid, ApiError>);

/// The `file_ids` of a bulk get or delete, each with its UUID (or the 404 of an id that is
/// none), checked and charged: not too many, none twice.
fn file_ids(
    mut body: Map<String, Value>,
    state: &AppState,
    request: &HttpRequest,
    principal: &Principal,
) -> Result<Vec<RequestedFile>, ApiError> {
    let invalid = || FieldError::invalid_type("file_ids", "a JSON array of file ids");
    let Some(Value::Array(ids)) = body.remove("file_ids") else {
        return Err(invalid().into());
    };
    limits::check_count(state, request, "file_ids", ids.len())?;
    let ids = ids
        .into_iter()
        .map(|id| match id {
            Value::String(id) => {
                let data_id = file_id(&id);
                Ok((id, data_id))
            }
            _ => Err(ApiError::from(invalid())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parsed = ids
        .iter()
        .enumerate()
        .filter_map(|(position, (_, data_id))| Some((position, *data_id.as_ref().ok()?)));
    limits::refuse_repeats(parsed, |position| format!("file_ids[{position}]"))?;
    limits::charge(state, request, principal, ids.len())?;
    Ok(ids)
}

struct Change {
    data_id: Uuid,
    patch: DataEntryPatch,
    /// The whole new document (replace) or a merge patch (merge); `None`: leave it.
    metadata: Option<Value>,
}

fn parse_item(item: Value, mode: Mode, limits: &MetadataLimits) -> Result<Change, ApiError> {
    let Value::Object(item) = item else {
        return Err(FieldError::invalid_type("item", "an object").into());
    };
    let mut id = None;
    let mut native = Map::new();
    let mut tags = (mode == Mode::Replace).then(Vec::new);
    let mut metadata = (mode == Mode::Replace).then(|| json!({}));
    let mut errors = Vec::new();
    for (key, value) in item {
        match (key.as_str(), value) {
            // The Python client sends `id`; the public docs' examples say `file_id`.
            ("id" | "file_id", Value::String(raw)) => id = Some(raw),
            ("id" | "file_id", _) => errors.push(FieldError::invalid_type(&key, "a string")),
            // Omitted: for a replace, tags and metadata already default to empty.
            (_, Value::Null) => {}
            ("name", value) => {
                native.insert("raw_name".into(), value);
            }
            ("tags", value) => match tags::parse("tags", value) {
                Ok(parsed) => tags = Some(parsed),
                Err(error) => errors.push(error),
            },
            ("metadata", value) => match MetadataPatch::parse("metadata", value, limits) {
                Ok(document) => {
                    let document = document.into_value();
                    metadata = Some(match mode {
                        Mode::Replace => without_nulls(document),
                        Mode::Merge => document,
                    });
                }
                Err(error) => errors.push(error),
            },
            // Members of a whole file object that cannot change; sent back as they are.
            (field, _) if FILE_FIELDS.contains(&field) => {}
            (field, _) => {
                errors.push(FieldError::unknown_field(
                    field,
                    &["id", "name", "tags", "metadata"],
                ));
            }
        }
    }
    let Some(raw_id) = id else {
        return Err(FieldError::required("id").into());
    };
    let mut patch = match DataEntryPatch::from_json(native, limits) {
        Ok(patch) if errors.is_empty() => patch,
        Ok(_) => return Err(ApiError::Invalid(errors)),
        Err(more) => return Err(ApiError::Invalid(errors.into_iter().chain(more).collect())),
    };
    patch.tags = tags;
    Ok(Change {
        data_id: file_id(&raw_id)?,
        patch,
        metadata,
    })
}
