use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db;
use crate::db::data_entries::{Actor, MetadataWrite};
use crate::domain::{DataEntry, DataEntryPatch, FieldError, IfMatch, NewDataEntry, Patch};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::telemetry;

pub fn not_found(data_id: Uuid) -> ApiError {
    ApiError::NotFound {
        what: "data entry",
        id: data_id.to_string(),
    }
}

/// Who is writing, for the history row: the caller's key and this request's id.
fn actor<'a>(principal: &'a Principal, request_id: &'a Option<String>) -> Actor<'a> {
    Actor {
        user_id: &principal.user_id,
        key_id: principal.key_id,
        request_id: request_id.as_deref(),
    }
}

pub async fn create(
    conn: &mut PgConnection,
    state: &AppState,
    principal: &Principal,
    entry: &NewDataEntry,
) -> Result<DataEntry, ApiError> {
    if let Some(sample) = entry.physical_sample_id {
        ensure_sample_usable(conn, principal, sample).await?;
    }
    let request_id = telemetry::current_request_id();
    let actor = actor(principal, &request_id);
    let created = db::data_entries::insert(
        conn,
        &principal.user_id,
        entry,
        &state.metadata_limits,
        &actor,
    )
    .await?;
    Ok(created)
}

/// One entry, for a request that only reads it: through the coalescing reader, without
/// taking a connection of its own.
pub async fn read(
    state: &AppState,
    principal: &Principal,
    data_id: Uuid,
) -> Result<DataEntry, ApiError> {
    state
        .entry_reader
        .get(&principal.user_id, data_id)
        .await?
        .ok_or_else(|| not_found(data_id))
}

/// One entry, on a connection the caller already holds (inside a write).
pub async fn get(
    conn: &mut PgConnection,
    principal: &Principal,
    data_id: Uuid,
) -> Result<DataEntry, ApiError> {
    db::data_entries::get(conn, &principal.user_id, data_id)
        .await?
        .ok_or_else(|| not_found(data_id))
}

/// Applies `patch` and `metadata` atomically. A change that alters nothing returns the
/// current entry untouched; a stale `If-Match` is a 412 carrying the current ETag.
pub async fn update(
    conn: &mut PgConnection,
    state: &AppState,
    principal: &Principal,
    data_id: Uuid,
    patch: &DataEntryPatch,
    metadata: MetadataWrite<'_>,
    if_match: Option<&IfMatch>,
) -> Result<DataEntry, ApiError> {
    check_precondition_present(state, if_match)?;
    if let Patch::Set(sample) = patch.physical_sample_id {
        ensure_sample_usable(conn, principal, sample).await?;
    }
    let expected = if_match.and_then(IfMatch::revisions);
    let request_id = telemetry::current_request_id();
    let updated = db::data_entries::update(
        conn,
        &principal.user_id,
        data_id,
        patch,
        metadata,
        expected,
        &state.metadata_limits,
        &actor(principal, &request_id),
    )
    .await?;
    if let Some(entry) = updated {
        return Ok(entry);
    }
    // Nothing written: the entry is missing, the precondition failed, or it was a no-op.
    let current = get(conn, principal, data_id).await?;
    match if_match {
        Some(condition) if !condition.matches(current.revision) => {
            Err(ApiError::PreconditionFailed {
                current_etag: current.etag(),
            })
        }
        _ => Ok(current),
    }
}

pub async fn delete(
    conn: &mut PgConnection,
    state: &AppState,
    principal: &Principal,
    data_id: Uuid,
    if_match: Option<&IfMatch>,
) -> Result<(), ApiError> {
    check_precondition_present(state, if_match)?;
    let expected = if_match.and_then(IfMatch::revisions);
    let request_id = telemetry::current_request_id();
    let actor = actor(principal, &request_id);
    let deleted =
        db::data_entries::delete(conn, &principal.user_id, data_id, expected, &actor).await?;
    if deleted {
        return Ok(());
    }
    let current = get(conn, principal, data_id).await?;
    Err(ApiError::PreconditionFailed {
        current_etag: current.etag(),
    })
}

fn check_precondition_present(
    state: &AppState,
    if_match: Option<&IfMatch>,
) -> Result<(), ApiError> {
    if state.require_if_match && if_match.is_none() {
        return Err(ApiError::PreconditionRequired);
    }
    Ok(())
}

/// A sample can be linked only if it exists and the caller owns it; anything else is
/// reported as the same unknown sample.
async fn ensure_sample_usable(
    conn: &mut PgConnection,
    principal: &Principal,
    sample: Uuid,
) -> Result<(), ApiError> {
    match db::physical_samples::get(conn, &principal.user_id, sample).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::Invalid(vec![FieldError::new(
            "physical_sample_id",
            "unknown_physical_sample",
            format!("no physical sample with id '{sample}'"),
        )])),
    }
}
