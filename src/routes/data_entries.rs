use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use uuid::Uuid;

use super::body::{JsonBody, JsonObject};
use super::response::{entry_fields, if_match, not_modified, parse_id, query_pairs, with_etag};
use crate::auth::Principal;
use crate::catalog::entries as catalog;
use crate::db;
use crate::db::data_entries::MetadataWrite;
use crate::domain::search::Cursor;
use crate::domain::{DataEntryPatch, FieldError, NewDataEntry, Scope, SearchQuery, SortKey};
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
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    let entry = catalog::create(&mut conn, &principal, &entry).await?;
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
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    let entry = catalog::get(&mut conn, &principal, data_id).await?;
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
    let condition = if_match(&request)?;
    let patch = DataEntryPatch::from_json(body, &state.metadata_limits)?;
    let metadata = patch
        .metadata
        .as_ref()
        .map(|m| Value::from(m.as_object().clone()));
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
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
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let data_id = parse_id(&path)?;
    let condition = if_match(&request)?;
    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    catalog::delete(&mut conn, &state, &principal, data_id, condition.as_ref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PATCH /data_entries` with `[{"data_id": …, <patch fields>}, …]`: one result per item, in
/// order. Each item is atomic on its own; with `?atomic=true` the whole batch is, and one
/// bad item means none is applied.
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
    if items.len() > state.bulk_max_items {
        return Err(FieldError::new(
            "body",
            "too_many_items",
            format!("at most {} items per request", state.bulk_max_items),
        )
        .into());
    }
    let parsed: Vec<_> = items
        .into_iter()
        .map(|item| parse_bulk_item(item, &state))
        .collect();
    let ids: Vec<Option<Uuid>> = parsed.iter().map(|(id, _)| *id).collect();
    let parsed: Vec<_> = parsed.into_iter().map(|(_, item)| item).collect();

    if atomic {
        let errors: Vec<FieldError> = parsed
            .iter()
            .enumerate()
            .filter_map(|(i, item)| item.as_ref().err().map(|e| item_error(i, e)))
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let mut transaction = state.pool.begin().await.map_err(db::DbError::from)?;
        let mut results = Vec::with_capacity(parsed.len());
        for (i, item) in parsed.into_iter().enumerate() {
            let (data_id, patch) = item.expect("checked above");
            match apply_bulk_item(&mut transaction, &state, &principal, data_id, &patch).await {
                Ok(entry) => {
                    results.push(json!({"data_id": data_id, "status": 200, "entry": entry}))
                }
                // Dropping the transaction rolls every earlier item back.
                Err(error) => return Err(ApiError::Invalid(vec![item_error(i, &error)])),
            }
        }
        transaction.commit().await.map_err(db::DbError::from)?;
        return Ok(HttpResponse::Ok().json(results));
    }

    let mut conn = state.pool.acquire().await.map_err(db::DbError::from)?;
    let mut results = Vec::with_capacity(parsed.len());
    for (item, data_id) in parsed.into_iter().zip(ids) {
        let outcome = match item {
            Ok((data_id, patch)) => {
                apply_bulk_item(&mut conn, &state, &principal, data_id, &patch).await
            }
            Err(error) => Err(error),
        };
        results.push(match outcome {
            Ok(entry) => json!({"data_id": data_id, "status": 200, "entry": entry}),
            Err(error) => json!({
                "data_id": data_id,
                "status": actix_web::ResponseError::status_code(&error).as_u16(),
                "problem": error.problem(),
            }),
        });
    }
    Ok(HttpResponse::Ok().json(results))
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
) -> Result<Value, ApiError> {
    let metadata = patch
        .metadata
        .as_ref()
        .map(|m| Value::from(m.as_object().clone()));
    let entry = catalog::update(
        conn,
        state,
        principal,
        data_id,
        patch,
        MetadataWrite::Merge(metadata.as_ref()),
        None,
    )
    .await?;
    Ok(entry.to_json())
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
        &principal.user_id,
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
                SortKey::UploadDatetime => last.upload_datetime,
                SortKey::LastUpdated => last.last_updated,
            },
            after_id: last.data_id,
        };
        response.insert_header((header::LINK, next_link(&request, &pairs, &cursor.encode())));
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
    let connection = request.connection_info();
    format!(
        "<{}://{}{}?{}>; rel=\"next\"",
        connection.scheme(),
        connection.host(),
        request.path(),
        query.finish()
    )
}
