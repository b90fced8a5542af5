//! Metadata schemas per project and data type: storing their versions (admins), reading
//! them (any member), checking a write's resulting metadata against the one that applies,
//! rechecking stored entries when a schema changes, and the dry run of a candidate.

use std::sync::Arc;

use prometheus::IntCounterVec;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::projects::require_role;
use crate::auth::Principal;
use crate::db;
use crate::db::data_entries::{MetadataWrite, SchemaCheck, Shortcut};
use crate::db::metadata_schemas::{Rechecked, SchemaRef, StoredSchema};
use crate::domain::metadata::merged;
use crate::domain::metadata_schema::{
    CompiledSchema, SchemaChange, SchemaLimits, SchemaTarget, SchemaViolation, Verdict,
};
use crate::domain::{Role, SchemaMode};
use crate::error::ApiError;

/// Entries rechecked (and locked) per transaction when a schema changes.
const RECHECK_BATCH: i64 = 500;
/// Entries read per statement by a dry run.
const DRY_RUN_BATCH: i64 = 1000;
/// Failing entries a dry run lists.
const DRY_RUN_LISTED: usize = 20;

/// Schema versions remembered per user as met lately by their writes.
const RECENT_PER_USER: usize = 4;

/// Compiled schemas by version id. A version never changes once stored, so an entry
/// cannot go stale; which version applies is read from the database on every write.
#[derive(Clone)]
pub struct SchemaCache {
    compiled: moka::sync::Cache<i64, Arc<CompiledSchema>>,
    /// The versions each user's writes met lately, newest first: the ones a write offers
    /// its statement as shortcuts (`shortcut`). Only a guess: the statement itself compares
    /// it with the version that applies, and a wrong one costs what no guess would.
    recent: moka::sync::Cache<String, Arc<[i64]>>,
    limits: SchemaLimits,
    checked_writes: IntCounterVec,
}

impl SchemaCache {
    pub fn new(limits: SchemaLimits, checked_writes: IntCounterVec) -> Self {
        Self {
            compiled: moka::sync::Cache::new(1000),
            recent: moka::sync::Cache::new(10_000),
            limits,
            checked_writes,
        }
    }

    /// The versions, among those `user`'s writes met lately, under which `write`'s result
    /// is known valid without checking it (`Verdict`); for a merge, provided the stored
    /// document was found valid under the same version, which the statement checks.
    pub fn shortcut(&self, user: &str, write: MetadataWrite<'_>) -> Shortcut {
        let mut shortcut = Shortcut {
            schema_ids: Vec::new(),
            whatever_stored: matches!(write, MetadataWrite::Replace(_)),
        };
        let Some(recent) = self.recent.get(user) else {
            return shortcut;
        };
        for &schema_id in recent.iter() {
            let Some(compiled) = self.compiled.get(&schema_id) else {
                continue;
            };
            let verdict = match write {
                MetadataWrite::Merge(patch) => compiled.verdict_on_merge(patch),
                MetadataWrite::Replace(document) => compiled.verdict_on_replacement(document),
            };
            if verdict != Verdict::Undecided {
                shortcut.schema_ids.push(schema_id);
            }
        }
        shortcut
    }

    /// Remembers that a write of `user`'s met `schema_id`.
    pub fn met(&self, user: &str, schema_id: i64) {
        let recent = self.recent.get(user);
        if recent.as_ref().and_then(|ids| ids.first()) == Some(&schema_id) {
            return;
        }
        let ids: Arc<[i64]> = std::iter::once(schema_id)
            .chain(
                recent
                    .iter()
                    .flat_map(|ids| ids.iter().copied())
                    .filter(|&id| id != schema_id),
            )
            .take(RECENT_PER_USER)
            .collect();
        self.recent.insert(user.to_owned(), ids);
    }

    /// Counts a write stored under a schema: checked in `full`, or by the shortcut.
    pub fn count_checked_write(&self, full: bool) {
        let check = if full { "full" } else { "shortcut" };
        self.checked_writes.with_label_values(&[check]).inc();
    }

    pub fn limits(&self) -> &SchemaLimits {
        &self.limits
    }

    /// The compiled version `schema_id`, compiled on first use on this instance.
    pub async fn get(
        &self,
        conn: &mut PgConnection,
        schema_id: i64,
    ) -> Result<Arc<CompiledSchema>, ApiError> {
        if let Some(compiled) = self.compiled.get(&schema_id) {
            return Ok(compiled);
        }
        let document = db::metadata_schemas::document(conn, schema_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("metadata schema {schema_id} vanished"))?;
        // Stored schemas compiled when they were stored; one that no longer does was made
        // under looser limits than the configured ones.
        let compiled = CompiledSchema::compile(&document, &self.limits).map_err(|error| {
            anyhow::anyhow!(
                "stored metadata schema {schema_id} no longer compiles: {}",
                error.message
            )
        })?;
        let compiled = Arc::new(compiled);
        self.compiled.insert(schema_id, compiled.clone());
        Ok(compiled)
    }

    fn remember(&self, schema_id: i64, compiled: CompiledSchema) {
        self.compiled.insert(schema_id, Arc::new(compiled));
    }

    /// Checks the document a write would store against `schema`: a refusal (422 listing
    /// every violation) under an enforcing schema, else what the write records.
    /// `document` is the stored metadata the write starts from, at `revision`.
    pub async fn check_write(
        &self,
        conn: &mut PgConnection,
        schema: Option<SchemaRef>,
        document: &Value,
        write: MetadataWrite<'_>,
        revision: Option<i64>,
    ) -> Result<SchemaCheck, ApiError> {
        let Some(schema) = schema else {
            return Ok(SchemaCheck::default());
        };
        let compiled = self.get(conn, schema.schema_id).await?;
        let result = match write {
            MetadataWrite::Merge(None) => compiled.check(document),
            MetadataWrite::Merge(Some(patch)) => compiled.check(&merged(document, patch)),
            MetadataWrite::Replace(replacement) => compiled.check(replacement),
        };
        if schema.mode == SchemaMode::Enforce && !result.is_empty() {
            return Err(ApiError::Invalid(
                result.iter().map(SchemaViolation::to_field_error).collect(),
            ));
        }
        Ok(SchemaCheck {
            schema: Some(schema),
            violations: result,
            revision,
            shortcut: Shortcut::default(),
        })
    }
}

/// A stored version, as the API shows it.
#[derive(Serialize)]
pub struct SchemaView {
    pub project_id: Uuid,
    pub char_source_type: String,
    pub version: i32,
    pub mode: SchemaMode,
    pub schema: Value,
    pub created_by: String,
    #[serde(serialize_with = "crate::domain::timestamp::serialize")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(
        serialize_with = "crate::domain::timestamp::serialize_optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub retired_at: Option<chrono::DateTime<chrono::Utc>>,
    /// After a PUT or DELETE: how many stored entries are being rechecked in the background.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rechecking: Option<i64>,
}

impl From<StoredSchema> for SchemaView {
    fn from(stored: StoredSchema) -> Self {
        Self {
            project_id: stored.project_id,
            char_source_type: stored.target,
            version: stored.version,
            mode: stored.mode,
            schema: stored.schema,
            created_by: stored.created_by,
            created_at: stored.created_at,
            retired_at: stored.retired_at,
            rechecking: None,
        }
    }
}

fn not_found(project: Uuid, target: SchemaTarget) -> ApiError {
    ApiError::NotFound {
        what: "metadata schema",
        id: format!("{project}/{target}"),
    }
}

/// The current schema (any member may read it).
pub async fn current(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    target: SchemaTarget,
) -> Result<SchemaView, ApiError> {
    let mut conn = pool.acquire().await?;
    require_role(&mut conn, principal, project, Role::Viewer).await?;
    db::metadata_schemas::current(&mut *conn, project, target)
        .await?
        .map(SchemaView::from)
        .ok_or_else(|| not_found(project, target))
}

/// The earlier versions, newest first (any member may read them).
pub async fn versions(
    pool: &PgPool,
    principal: &Principal,
    project: Uuid,
    target: SchemaTarget,
) -> Result<Vec<SchemaView>, ApiError> {
    let mut conn = pool.acquire().await?;
    require_role(&mut conn, principal, project, Role::Viewer).await?;
    let versions = db::metadata_schemas::versions(&mut *conn, project, target).await?;
    Ok(versions.into_iter().map(SchemaView::from).collect())
}

/// Stores `change` as the next version (admins only) and rechecks the entries it is for in
/// the background.
pub async fn put(
    pool: &PgPool,
    cache: &SchemaCache,
    principal: &Principal,
    project: Uuid,
    target: SchemaTarget,
    change: &SchemaChange,
) -> Result<SchemaView, ApiError> {
    let mut transaction = pool.begin().await?;
    // Versions of one project are handed out in turn.
    db::projects::lock(&mut *transaction, project).await?;
    require_role(&mut transaction, principal, project, Role::Admin).await?;
    let compiled = CompiledSchema::compile(&change.schema, cache.limits())?;
    let stored = db::metadata_schemas::insert(
        &mut transaction,
        project,
        target,
        change.mode,
        &change.schema,
        &principal.user_id,
    )
    .await?;
    let rechecking =
        db::metadata_schemas::count_entries(&mut *transaction, project, target).await?;
    transaction.commit().await?;
    cache.remember(stored.schema_id, compiled);
    spawn_recheck(pool.clone(), cache.clone(), project, target);
    Ok(SchemaView {
        rechecking: Some(rechecking),
        ..SchemaView::from(stored)
    })
}

/// Removes the schema for `target` (admins only); its versions stay readable. The entries
/// it was for are rechecked against whatever applies now (the default, or nothing).
pub async fn delete(
    pool: &PgPool,
    cache: &SchemaCache,
    principal: &Principal,
    project: Uuid,
    target: SchemaTarget,
) -> Result<i64, ApiError> {
    let mut transaction = pool.begin().await?;
    db::projects::lock(&mut *transaction, project).await?;
    require_role(&mut transaction, principal, project, Role::Admin).await?;
    if !db::metadata_schemas::retire(&mut *transaction, project, target).await? {
        return Err(not_found(project, target));
    }
    let rechecking =
        db::metadata_schemas::count_entries(&mut *transaction, project, target).await?;
    transaction.commit().await?;
    spawn_recheck(pool.clone(), cache.clone(), project, target);
    Ok(rechecking)
}

/// Rechecks, batch by batch, every entry `target` is written for against the schema that
/// applies to it when its batch comes: each batch is locked while it is checked, so a write
/// in between is checked by the write itself.
fn spawn_recheck(pool: PgPool, cache: SchemaCache, project: Uuid, target: SchemaTarget) {
    tokio::spawn(async move {
        let mut after = None;
        loop {
            match recheck_batch(&pool, &cache, project, target, after).await {
                Ok(Some(last)) => after = Some(last),
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%project, %target, error = %error,
                        "rechecking entries against a changed metadata schema stopped");
                    break;
                }
            }
        }
    });
}

/// One batch after `after`; the last id checked, `None` when there were no more.
async fn recheck_batch(
    pool: &PgPool,
    cache: &SchemaCache,
    project: Uuid,
    target: SchemaTarget,
    after: Option<Uuid>,
) -> Result<Option<Uuid>, ApiError> {
    let mut transaction = pool.begin().await?;
    let batch = db::metadata_schemas::entries_to_check(
        &mut transaction,
        project,
        target,
        after,
        RECHECK_BATCH,
        true,
    )
    .await?;
    let Some(last) = batch.last().map(|entry| entry.data_id) else {
        return Ok(None);
    };
    let mut checked = Vec::with_capacity(batch.len());
    for entry in &batch {
        let validity = match entry.schema {
            None => None,
            Some(schema) => Some(
                cache
                    .get(&mut transaction, schema.schema_id)
                    .await?
                    .check(&entry.metadata),
            ),
        };
        checked.push(Rechecked {
            data_id: entry.data_id,
            schema_id: entry.schema.map(|schema| schema.schema_id),
            validity,
        });
    }
    db::metadata_schemas::set_validity(&mut transaction, &checked).await?;
    transaction.commit().await?;
    Ok(Some(last))
}

/// One failing entry of a dry run.
#[derive(Serialize)]
pub struct FailingEntry {
    pub data_id: Uuid,
    pub errors: Vec<SchemaViolation>,
}

/// What a candidate schema would say of the stored entries it would be for.
#[derive(Serialize)]
pub struct DryRun {
    /// Entries checked.
    pub checked: i64,
    /// How many of them would fail.
    pub failing: i64,
    /// The first failing ones (by id), at most 20.
    pub first_failing: Vec<FailingEntry>,
}

/// Checks `schema` against every stored entry it would be for, storing nothing (admins
/// only, like the PUT it tries out).
pub async fn dry_run(
    pool: &PgPool,
    cache: &SchemaCache,
    principal: &Principal,
    project: Uuid,
    target: SchemaTarget,
    schema: &Value,
) -> Result<DryRun, ApiError> {
    let mut conn = pool.acquire().await?;
    require_role(&mut conn, principal, project, Role::Admin).await?;
    let compiled = CompiledSchema::compile(schema, cache.limits())?;
    let mut answer = DryRun {
        checked: 0,
        failing: 0,
        first_failing: Vec::new(),
    };
    let mut after = None;
    loop {
        let batch = db::metadata_schemas::entries_to_check(
            &mut conn,
            project,
            target,
            after,
            DRY_RUN_BATCH,
            false,
        )
        .await?;
        let Some(last) = batch.last().map(|entry| entry.data_id) else {
            break;
        };
        for entry in batch {
            answer.checked += 1;
            let errors = compiled.check(&entry.metadata);
            if errors.is_empty() {
                continue;
            }
            answer.failing += 1;
            if answer.first_failing.len() < DRY_RUN_LISTED {
                answer.first_failing.push(FailingEntry {
                    data_id: entry.data_id,
                    errors,
                });
            }
        }
        after = Some(last);
    }
    Ok(answer)
}
