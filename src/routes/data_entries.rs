use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::body::{JsonBody, JsonObject};
use super::bulk::{self, JsonItems};
use super::response::{
    entry_fields, entry_response, if_match, not_modified, parse_id, query_pairs, search_query_error,
};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::db;
use crate::db::data_entries::MetadataWrite;
use crate::domain::data_entry::EntryBody as EntryAnswer;
use crate::domain::search::Cursor;
use crate::domain::{DataEntry, DataEntryPatch, FieldError, NewDataEntry, Scope, SearchQuery};
use crate::error::ApiError;
use crate::openapi::params::{
    BulkParams, EntryFields, HistoryParams, IfMatch as IfMatchHeader, IfNoneMatch, SearchFilters,
    SearchPaging,
};
use crate::openapi::responses::*;
use crate::openapi::schemas::{
    BulkPatchItem, BulkResult, DataEntry as EntryBody, DataEntryPatch as PatchBody, HistoryRecord,
    NewDataEntry as NewEntryBody, Problem,
};
use crate::startup::AppState;

/// `POST /data_entries`: 201, `Location`, the full entry.
#[utoipa::path(
    post,
    path = "/data_entries",
    operation_id = "create_data_entry",
    tag = "data entries",
    summary = "Register a data entry",
    params(EntryFields),
    request_body(content = NewEntryBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = EntryBody,
            headers(("ETag" = String, description = "The entry's revision, quoted."),
                ("Location" = String, description = "`/data_entries/{data_id}`.")),
            links(
                ("GetDataEntry" = (operation_id = "get_data_entry",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("UpdateDataEntry" = (operation_id = "update_data_entry",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("DeleteDataEntry" = (operation_id = "delete_data_entry",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("GetMetadata" = (operation_id = "get_metadata",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("MergeMetadata" = (operation_id = "merge_metadata",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("ReplaceMetadata" = (operation_id = "replace_metadata",
                    parameters(("data_id" = "$response.body#/data_id")))),
                ("GetHistory" = (operation_id = "get_data_entry_history",
                    parameters(("data_id" = "$response.body#/data_id")))),
            )),
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
    request: HttpRequest,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let fields = entry_fields(&request)?;
    let entry = NewDataEntry::from_json(body, &state.metadata_limits)?;
    let mut conn = state.pool.acquire().await?;
    let entry = catalog::create(&mut conn, &state, &principal, &entry).await?;
    let location = format!("/data_entries/{}", entry.data_id);
    let mut response = entry_response(StatusCode::CREATED, &entry, &fields);
    response.headers_mut().insert(
        header::LOCATION,
        header::HeaderValue::from_str(&location).expect("a path with a UUID is a valid header"),
    );
    Ok(response)
}

/// `GET /data_entries/{data_id}`: the full entry, with `ETag` (and 304 on `If-None-Match`).
#[utoipa::path(
    get,
    path = "/data_entries/{data_id}",
    operation_id = "get_data_entry",
    tag = "data entries",
    summary = "Get a data entry",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        EntryFields,
        IfNoneMatch,
    ),
    responses(
        (status = 200, description = "The entry.", body = EntryBody,
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
    let fields = entry_fields(&request)?;
    let entry = catalog::read(&state, &principal, data_id).await?;
    if not_modified(&request, &entry.etag()) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, entry.etag()))
            .finish());
    }
    Ok(entry_response(StatusCode::OK, &entry, &fields))
}

/// `PATCH /data_entries/{data_id}`: a partial update, applied atomically; the full entry back.
#[utoipa::path(
    patch,
    path = "/data_entries/{data_id}",
    operation_id = "update_data_entry",
    tag = "data entries",
    summary = "Update a data entry",
    description = "Every member is optional; `null` clears a nullable one; `metadata` is \
        merged as an RFC 7396 merge patch. The change is atomic and a no-op changes nothing \
        (not even `last_updated`).",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        EntryFields,
        IfMatchHeader,
    ),
    request_body(content(
        (PatchBody = "application/json"),
        (PatchBody = "application/merge-patch+json"),
    )),
    responses(
        (status = 200, description = "The entry after the change.", body = EntryBody,
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
    let condition = if_match(&request)?;
    let patch = DataEntryPatch::from_json(body, &state.metadata_limits)?;
    let metadata = patch
        .metadata
        .as_ref()
        .map(|m| Value::from(m.as_object().clone()));
    let mut conn = state.pool.acquire().await?;
    let entry = catalog::update(
        &mut conn,
        &state,
        &principal,
        data_id,
        &patch,
        MetadataWrite::Merge(metadata.as_ref()),
        condition.as_ref(),
    )
    .await?;
    Ok(entry_response(StatusCode::OK, &entry, &fields))
}

/// `DELETE /data_entries/{data_id}`: 204.
#[utoipa::path(
    delete,
    path = "/data_entries/{data_id}",
    operation_id = "delete_data_entry",
    tag = "data entries",
    summary = "Delete a data entry",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        IfMatchHeader,
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        (status = 428, response = PreconditionRequired),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = parse_id(&path)?;
    let condition = if_match(&request)?;
    let mut conn = state.pool.acquire().await?;
    catalog::delete(&mut conn, &state, &principal, data_id, condition.as_ref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PATCH /data_entries` with `[{"data_id": …, <patch fields>}, …]`: one result per item, in
/// order. Each item is atomic on its own; with `?atomic=true` the whole batch is, and one
/// bad item means none is applied.
#[utoipa::path(
    patch,
    path = "/data_entries",
    operation_id = "bulk_update_data_entries",
    tag = "data entries",
    summary = "Update many data entries",
    description = "One result per item, in order; each item is atomic on its own and reports \
        the status it would have had alone. With `?atomic=true` the batch is all or nothing: \
        one bad item is a 422 naming it (`[index].field`) and nothing is applied. Before any \
        work: an entry named by two items is a 400 (`duplicate_item`, naming it and its \
        positions); more items than `writes.bulk_max_items` (1000 by default) or than the \
        user's write rate-limit bucket holds (200 by default), a 400 (`too_many_items`, \
        naming the limit). Each item costs one rate-limit token (429 when the bucket cannot \
        pay now).",
    params(BulkParams),
    request_body(content(
        (Vec<BulkPatchItem> = "application/json"),
        (Vec<BulkPatchItem> = "application/merge-patch+json"),
    )),
    responses(
        (status = 200, description = "Each item's outcome.", body = Vec<BulkResult>),
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
pub async fn bulk_update(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonBody(body): JsonBody,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let atomic = query_pairs(&request)
        .iter()
        .any(|(name, value)| name == "atomic" && matches!(value.as_str(), "true" | "1"));
    let Value::Array(items) = body else {
        return Err(FieldError::invalid_type("body", "a JSON array of patches").into());
    };
    bulk::check_count(&state, &request, "body", items.len())?;
    let parsed: Vec<_> = items
        .into_iter()
        .map(|item| parse_bulk_item(item, &state))
        .collect();
    let ids: Vec<Option<Uuid>> = parsed.iter().map(|(id, _)| *id).collect();
    let parsed: Vec<_> = parsed.into_iter().map(|(_, item)| item).collect();
    let named = ids
        .iter()
        .enumerate()
        .filter_map(|(position, id)| Some((position, (*id)?)));
    bulk::refuse_repeats(named, |position| format!("[{position}].data_id"))?;
    bulk::charge(&state, &request, &principal, parsed.len())?;

    if atomic {
        let errors: Vec<FieldError> = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, item)| item.as_ref().err().map(|e| item_error(i, e)))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let mut transaction = state.pool.begin().await?;
        let mut results = JsonItems::new("[");
        for (i, item) in parsed.into_iter().enumerate() {
            let (data_id, patch) = item.expect("checked above");
            match apply_bulk_item(&mut transaction, &state, &principal, data_id, &patch).await {
                Ok(entry) => results.push(&Applied::new(&entry))?,
                // Dropping the transaction rolls every earlier item back.
                Err(error) => return Err(ApiError::Invalid(vec![item_error(i, &error)])),
            }
        }
        transaction.commit().await?;
        return Ok(results.respond("]"));
    }

    let mut conn = state.pool.acquire().await?;
    let mut results = JsonItems::new("[");
    for (item, data_id) in parsed.into_iter().zip(ids) {
        let outcome = match item {
            Ok((data_id, patch)) => {
                apply_bulk_item(&mut conn, &state, &principal, data_id, &patch).await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(entry) => results.push(&Applied::new(&entry))?,
            Err(error) => results.push(&json!({
                "data_id": data_id,
                "status": actix_web::ResponseError::status_code(&error).as_u16(),
                "problem": error.problem(),
            }))?,
        }
    }
    Ok(results.respond("]"))
}

/// A bulk item that was applied, serialised straight from the entry (no JSON tree).
#[derive(Serialize)]
struct Applied<'a> {
    data_id: Uuid,
    status: u16,
    entry: EntryAnswer<'a>,
}

impl<'a> Applied<'a> {
    fn new(entry: &'a DataEntry) -> Self {
        Self {
            data_id: entry.data_id,
            status: 200,
            entry: entry.body(),
        }
    }
}

type BulkItem = Result<(Uuid, DataEntryPatch), ApiError>;

/// An item's id (when it has a valid one, so even a refused item can be matched up) and
/// its validated patch.
fn parse_bulk_item(item: Value, state: &AppState) -> (Option<Uuid>, BulkItem) {
    let Value::Object(mut object) = item else {
        return (
            None,
            Err(FieldError::invalid_type("item", "an object").into()),
        );
    };
    let data_id = match object.remove("data_id") {
        Some(Value::String(id)) => match Uuid::parse_str(&id) {
            Ok(id) => id,
            Err(_) => {
                let error = FieldError::invalid_value("data_id", "'data_id' must be a UUID");
                return (None, Err(error.into()));
            }
        },
        Some(_) => {
            let error = FieldError::invalid_type("data_id", "a UUID string");
            return (None, Err(error.into()));
        }
        None => return (None, Err(FieldError::required("data_id").into())),
    };
    let patch = DataEntryPatch::from_json(object, &state.metadata_limits);
    (
        Some(data_id),
        patch.map(|patch| (data_id, patch)).map_err(ApiError::from),
    )
}

async fn apply_bulk_item(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    principal: &Principal,
    data_id: Uuid,
    patch: &DataEntryPatch,
) -> Result<DataEntry, ApiError> {
    let metadata = patch
        .metadata
        .as_ref()
        .map(|m| Value::from(m.as_object().clone()));
    catalog::update(
        conn,
        state,
        principal,
        data_id,
        patch,
        MetadataWrite::Merge(metadata.as_ref()),
        None,
    )
    .await
}

/// An item's problem as one `errors` member, its field prefixed with the item's index.
fn item_error(index: usize, error: &ApiError) -> FieldError {
    let (field, code, message) = match error {
        ApiError::Invalid(errors) if !errors.is_empty() => {
            let first = &errors[0];
            (
                format!("[{index}].{}", first.field),
                first.code,
                first.message.clone(),
            )
        }
        other => (format!("[{index}]"), other.code(), other.to_string()),
    };
    FieldError::new(field, code, message)
}

/// `GET /data_entries/{data_id}/history`: effective changes, newest first, paged by
/// `limit` (default 100) and `cursor` (the `Link: rel="next"` header carries it).
#[utoipa::path(
    get,
    path = "/data_entries/{data_id}/history",
    operation_id = "get_data_entry_history",
    tag = "data entries",
    summary = "An entry's change history",
    description = "Effective changes, newest first: who, when, with which key and request, and \
        what changed. Kept after the entry is deleted.",
    params(
        ("data_id" = uuid::Uuid, Path, description = "The entry's `data_id`."),
        HistoryParams,
    ),
    responses(
        (status = 200, description = "The changes.", body = Vec<HistoryRecord>,
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when there are more."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn history(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let data_id = parse_id(&path)?;
    let pairs = query_pairs(&request);
    let mut limit = 100;
    let mut before_revision = None;
    for (name, value) in &pairs {
        let invalid =
            |message: &str| ApiError::BadQuery(vec![FieldError::invalid_value(name, message)]);
        match name.as_str() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=1000).contains(limit))
                    .ok_or_else(|| invalid("'limit' must be an integer from 1 to 1000"))?
            }
            "cursor" => {
                before_revision = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| invalid("'cursor' is not a cursor this server issued"))?,
                )
            }
            _ => {}
        }
    }
    let records = db::data_entries::history(
        &state.pool,
        principal.access(),
        data_id,
        before_revision,
        limit + 1,
    )
    .await?;
    if records.is_empty() && before_revision.is_none() {
        return Err(catalog::not_found(data_id));
    }
    let has_more = records.len() as i64 > limit;
    let records = &records[..records.len().min(limit as usize)];
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (has_more, records.last()) {
        response.insert_header((
            header::LINK,
            next_link(&request, &pairs, &last.revision.to_string()),
        ));
    }
    Ok(response.json(records))
}

/// `GET /data_entries`: a JSON array; the next page in `Link: <…>; rel="next"`, the total
/// in `X-Total-Count`.
#[utoipa::path(
    get,
    path = "/data_entries",
    operation_id = "search_data_entries",
    tag = "data entries",
    summary = "Search data entries",
    description = "The entries the caller may read matching every given filter, as a JSON \
        array. Besides the parameters below, `metadata.<path>=<value>` keeps entries whose \
        metadata value at `<path>` (dot-separated keys into nested objects; `\\.` is a dot \
        inside a key, `\\\\` a backslash) equals the value (as a string, or as the number, \
        boolean or null it spells), or is an array holding it. \
        `metadata.<path>[<op>]=<value>` compares: `eq ne gt gte lt lte` — numbers \
        numerically, RFC 3339 date-times as instants, `<number> <unit>` (`1000 K`, \
        `750degC`, `0.1 mbar`) in SI against stored quantities (`{\"value\": 750, \
        \"unit\": \"degC\"}`) of that dimension, anything else as strings; a stored value of \
        another type never matches. Without a unit a quantity's `value` compares as written. \
        `in` (comma-separated), `exists` (`true|false`), `prefix` and `contains` \
        (case-insensitive, on strings); on an array, any element may match. `q=<words>`: \
        every word occurs, case-insensitively, in the name or some metadata string. All \
        filters AND together, at most 32 of them. Comparisons of numbers, instants and \
        quantities and `exists` use an index on the paths the server declares \
        (`search.indexed_paths`); on other paths they give the same answer, read from \
        each candidate's document. A malformed filter, an unknown unit or \
        units of two dimensions on one path is a 400 naming it; any other unknown \
        parameter is a 422.",
    params(SearchFilters, SearchPaging),
    responses(
        (status = 200, description = "A page of entries.", body = Vec<EntryBody>,
            headers(
                ("X-Total-Count" = i64, description = "How many entries match, over all pages."),
                ("Link" = String, description = "`<url>; rel=\"next\"` when there are more."),
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "A search parameter is unknown or has an invalid value \
            (422, as the FastAPI service the Atomscale SDK was written for answers); `errors` \
            names each one.", body = Problem, content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn search(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let fields = entry_fields(&request)?;
    let pairs = query_pairs(&request);
    let cursor_key = state.cursor_key().await?;
    let query = SearchQuery::parse(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        cursor_key,
    )
    .map_err(search_query_error)?;
    // The page and the total are independent reads (each statement has its own snapshot
    // either way): on two connections at once, a search waits for the slower, not the sum.
    let (page, total) = tokio::try_join!(
        db::data_entries::search(
            &state.pool,
            principal.access(),
            &query,
            &state.indexed_paths
        ),
        db::data_entries::count(
            &state.pool,
            principal.access(),
            &query,
            &state.indexed_paths
        ),
    )?;
    let entries = page.entries;

    let mut response = HttpResponse::Ok();
    response.insert_header(("X-Total-Count", total));
    if let Some((after_value, after_id)) = page.next {
        let cursor = Cursor {
            key: query.sort.clone(),
            descending: query.descending,
            after_value,
            after_id,
        };
        response.insert_header((
            header::LINK,
            next_link(&request, &pairs, &cursor.encode(cursor_key)),
        ));
    }
    // Each row names its project, as the Atomscale SDK reads it: one lookup for the page.
    let mut page_projects: Vec<Uuid> = entries.iter().map(|entry| entry.project_id).collect();
    page_projects.sort_unstable();
    page_projects.dedup();
    let names: HashMap<Uuid, String> =
        db::projects::names(&state.pool, principal.access(), &page_projects)
            .await?
            .into_iter()
            .collect();
    let name_of = |entry: &DataEntry| names.get(&entry.project_id).map_or("", String::as_str);
    if fields.is_all() {
        let body: Vec<_> = entries
            .iter()
            .map(|entry| entry.search_row(name_of(entry)))
            .collect();
        return Ok(response.json(body));
    }
    let body: Vec<Value> = entries
        .iter()
        .map(|entry| fields.apply(entry.to_json()))
        .collect();
    Ok(response.json(body))
}

/// The same request with `cursor` set to the given value.
fn next_link(request: &HttpRequest, pairs: &[(String, String)], cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(name, _)| name != "cursor") {
        query.append_pair(name, value);
    }
    query.append_pair("cursor", cursor);
    format!(
        "<{}{}?{}>; rel=\"next\"",
        super::public_url::base(request),
        request.path(),
        query.finish()
    )
}
