use std::ops::ControlFlow;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db;
use crate::db::data_entries::{Actor, MetadataWrite, SchemaCheck, UpdateOutcome};
use crate::domain::{DataEntry, DataEntryPatch, FieldError, IfMatch, NewDataEntry, Patch, Role};
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

/// How often a write checks again because the entry or the schema that applies changed
/// between its check and its statement, before it takes the entry's lock for the check.
const UNLOCKED_CHECKS: usize = 3;

pub async fn create(
    conn: &mut PgConnection,
    state: &AppState,
    principal: &Principal,
    entry: &NewDataEntry,
) -> Result<DataEntry, ApiError> {
    if let Some(sample) = entry.physical_sample_id {
        ensure_sample_usable(conn, principal, sample).await?;
    }
    let project = principal.access().default_project(entry.project_id);
    let request_id = telemetry::current_request_id();
    let actor = actor(principal, &request_id);
    // First as if no schema applied (the insert refuses if one does), so a project without
    // schemas pays nothing for them.
    let mut check = SchemaCheck::default();
    let mut created = None;
    for _ in 0..UNLOCKED_CHECKS {
        created = db::data_entries::insert(
            conn,
            principal.access(),
            project,
            entry,
            &state.metadata_limits,
            &actor,
            &check,
        )
        .await?;
        if created.is_some() {
            break;
        }
        // Only for a project the caller may create in does its schema matter.
        if let Some(project) = project
            && db::projects::role_of(&mut *conn, principal.access(), project)
                .await?
                .is_none_or(|role| role < Role::Editor)
        {
            break;
        }
        let applicable = db::metadata_schemas::applicable(
            &mut *conn,
            project,
            &principal.user_id,
            entry.char_source_type,
        )
        .await?;
        if let Some(schema) = applicable {
            state.schemas.met(&principal.user_id, schema.schema_id);
        }
        if applicable.map(|s| s.schema_id) == check.schema.map(|s| s.schema_id) {
            break;
        }
        let document = serde_json::Value::Object(entry.metadata.as_object().clone());
        check = state
            .schemas
            .check_write(
                conn,
                applicable,
                &document,
                MetadataWrite::Merge(None),
                None,
            )
            .await?;
    }
    match (created, project) {
        (Some(entry), _) => Ok(entry),
        (None, Some(project)) => Err(refusal(conn, principal, project, Role::Editor).await),
        (None, None) => Err(FieldError::new(
            "project_id",
            "project_required",
            "this key is limited to projects that do not include your personal project; name \
             one in 'project_id'",
        )
        .into()),
    }
}

/// Why the caller may not do something needing `needed` in `project`: 403 when it can see
/// the project, else the same unknown project as a missing one.
pub async fn refusal(
    conn: &mut PgConnection,
    principal: &Principal,
    project: Uuid,
    needed: Role,
) -> ApiError {
    match db::projects::role_of(conn, principal.access(), project).await {
        Ok(Some(role)) if role < needed => ApiError::RoleTooLow(needed),
        Ok(_) => FieldError::new(
            "project_id",
            "unknown_project",
            format!("no project with id '{project}'"),
        )
        .into(),
        Err(error) => error.into(),
    }
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
        .get(principal, data_id)
        .await?
        .ok_or_else(|| not_found(data_id))
}

/// One entry and the caller's role in its project, on a connection the caller already
/// holds (inside a write).
pub async fn get(
    conn: &mut PgConnection,
    principal: &Principal,
    data_id: Uuid,
) -> Result<(DataEntry, Role), ApiError> {
    db::data_entries::get(conn, principal.access(), data_id)
        .await?
        .ok_or_else(|| not_found(data_id))
}

/// The entry, on a write's connection, if the caller may change it: 403 when it can only
/// read it, 404 when it cannot.
async fn get_writable(
    conn: &mut PgConnection,
    principal: &Principal,
    data_id: Uuid,
) -> Result<DataEntry, ApiError> {
    match get(conn, principal, data_id).await? {
        (entry, role) if role >= Role::Editor => Ok(entry),
        _ => Err(ApiError::RoleTooLow(Role::Editor)),
    }
}

/// Applies `patch` and `metadata` atomically. A change that alters nothing returns the
/// current entry untouched; a stale `If-Match` is a 412 carrying the current ETag.
///
/// When a metadata schema applies to the result, the document the write would store is
/// checked first, and the write's statement applies only if the entry is still at the
/// revision checked and the same schema still applies (else it checks again). So what is
/// stored has always been checked, and two concurrent merges cannot together store what
/// neither was checked as. The one exception needs no check: a result known valid from the
/// write alone (`Verdict`), under the version that applies, when the stored document was
/// found valid under that same version — the statement itself makes sure of both.
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
    let actor = actor(principal, &request_id);
    // One try: the entry written or as it stays (`Break`), or the check to try again with.
    let attempt = async |conn: &mut PgConnection,
                         check: &SchemaCheck|
           -> Result<ControlFlow<DataEntry, SchemaCheck>, ApiError> {
        let outcome = db::data_entries::update(
            &mut *conn,
            principal.access(),
            data_id,
            patch,
            metadata,
            expected,
            &state.metadata_limits,
            &actor,
            check,
        )
        .await?;
        match outcome {
            UpdateOutcome::Written(entry) => {
                if entry.metadata_valid.is_some() {
                    // With no schema checked, only the shortcut stores a validity.
                    state.schemas.count_checked_write(check.schema.is_some());
                }
                Ok(ControlFlow::Break(entry))
            }
            UpdateOutcome::Nothing => unchanged(conn, principal, data_id, patch, if_match)
                .await
                .map(ControlFlow::Break),
            UpdateOutcome::Recheck { current, schema } => {
                if let Some(schema) = schema {
                    state.schemas.met(&principal.user_id, schema.schema_id);
                }
                stale_precondition(if_match, &current)?;
                let check = state
                    .schemas
                    .check_write(
                        conn,
                        schema,
                        &current.metadata,
                        metadata,
                        Some(current.revision),
                    )
                    .await?;
                Ok(ControlFlow::Continue(check))
            }
        }
    };
    // First as if no schema applied, or one of those the caller's writes met lately under
    // which the result is known valid without the stored document (the statement refuses
    // if another applies, or the stored document was not found valid under it): so an
    // entry without a schema pays nothing for schemas, and the common write under one is a
    // single statement too.
    let mut check = SchemaCheck {
        shortcut: state.schemas.shortcut(&principal.user_id, metadata),
        ..SchemaCheck::default()
    };
    for _ in 0..UNLOCKED_CHECKS {
        match attempt(&mut *conn, &check).await? {
            ControlFlow::Break(entry) => return Ok(entry),
            ControlFlow::Continue(next) => check = next,
        }
    }
    // Busy entry: the first statement of a transaction locks the row until the commit, so
    // the check made from what it returns cannot be overtaken.
    let mut transaction = sqlx::Acquire::begin(&mut *conn).await?;
    for _ in 0..UNLOCKED_CHECKS {
        match attempt(&mut transaction, &check).await? {
            ControlFlow::Break(entry) => {
                transaction.commit().await?;
                return Ok(entry);
            }
            ControlFlow::Continue(next) => check = next,
        }
    }
    // Only the schemas can still be changing, each PUT overtaking the last check.
    Err(ApiError::DatabaseTimedOut)
}

/// A stale `If-Match` is a 412 before the document is checked: the caller must first see
/// the entry as it is.
fn stale_precondition(if_match: Option<&IfMatch>, current: &DataEntry) -> Result<(), ApiError> {
    match if_match {
        Some(condition) if !condition.matches(current.revision) => {
            Err(ApiError::PreconditionFailed {
                current_etag: current.etag(),
            })
        }
        _ => Ok(()),
    }
}

/// Why an update wrote nothing: the entry is missing or not the caller's to change, the
/// move's target is not, the precondition failed, or it was a no-op (the current entry).
async fn unchanged(
    conn: &mut PgConnection,
    principal: &Principal,
    data_id: Uuid,
    patch: &DataEntryPatch,
    if_match: Option<&IfMatch>,
) -> Result<DataEntry, ApiError> {
    let current = get_writable(conn, principal, data_id).await?;
    if let Some(target) = patch.project_id
        && target != current.project_id
    {
        let moved = db::projects::role_of(&mut *conn, principal.access(), target).await?;
        if moved.is_none_or(|role| role < Role::Editor) {
            return Err(refusal(conn, principal, target, Role::Editor).await);
        }
    }
    stale_precondition(if_match, &current)?;
    Ok(current)
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
        db::data_entries::delete(conn, principal.access(), data_id, expected, &actor).await?;
    if deleted {
        return Ok(());
    }
    let current = get_writable(conn, principal, data_id).await?;
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

/// A sample can be linked only if it exists and the caller may read it; anything else is
/// reported as the same unknown sample.
async fn ensure_sample_usable(
    conn: &mut PgConnection,
    principal: &Principal,
    sample: Uuid,
) -> Result<(), ApiError> {
    match db::physical_samples::get(conn, principal.access(), sample).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::Invalid(vec![FieldError::new(
            "physical_sample_id",
            "unknown_physical_sample",
            format!("no physical sample with id '{sample}'"),
        )])),
    }
}
