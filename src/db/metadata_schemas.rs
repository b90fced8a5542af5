//! Metadata schemas (`metadata_schemas`) and the validity they give entries
//! (`data_entries.metadata_valid`, `metadata_errors`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use super::DbResult;
use crate::domain::metadata_schema::{SchemaTarget, SchemaViolation};
use crate::domain::{CharSourceType, SchemaMode};

/// The schema that applies to an entry of type `$type` in project `$project`: the type's
/// own, else the project's default. Joined `AS s` (`schema_id`, `target`, `version`, `mode`,
/// all NULL when none applies), so every statement picks it the same way.
macro_rules! applicable_schema {
    ($project:literal, $type:literal) => {
        concat!(
            "LEFT JOIN LATERAL (
                SELECT schema_id, target, version, mode FROM metadata_schemas
                WHERE project_id = ",
            $project,
            " AND retired_at IS NULL AND target IN (",
            $type,
            "::text, 'default')
                ORDER BY target = 'default' LIMIT 1
            ) AS s ON true"
        )
    };
}
pub(crate) use applicable_schema;

/// One version of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSchema {
    pub schema_id: i64,
    pub project_id: Uuid,
    pub target: String,
    pub version: i32,
    pub mode: SchemaMode,
    pub schema: Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// When a later version or a DELETE replaced it; `None` for the current one.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Which schema a write was checked against, as its history row records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaRef {
    pub schema_id: i64,
    pub version: i32,
    pub mode: SchemaMode,
    pub target: SchemaTarget,
}

fn mode_of(text: &str) -> Result<SchemaMode, sqlx::Error> {
    text.parse().map_err(|()| sqlx::Error::ColumnDecode {
        index: "mode".into(),
        source: format!("{text:?} is not a schema mode").into(),
    })
}

fn target_of(text: &str) -> Result<SchemaTarget, sqlx::Error> {
    SchemaTarget::parse(text).map_err(|_| sqlx::Error::ColumnDecode {
        index: "target".into(),
        source: format!("{text:?} is not a schema target").into(),
    })
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for StoredSchema {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            schema_id: row.try_get("schema_id")?,
            project_id: row.try_get("project_id")?,
            target: row.try_get("target")?,
            version: row.try_get("version")?,
            mode: mode_of(row.try_get("mode")?)?,
            schema: row.try_get("schema")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            retired_at: row.try_get("retired_at")?,
        })
    }
}

/// The `schema_id, target, version, mode` columns of `applicable_schema!` as a `SchemaRef`.
pub(crate) fn schema_ref(row: &sqlx::postgres::PgRow) -> Result<Option<SchemaRef>, sqlx::Error> {
    let Some(schema_id) = row.try_get::<Option<i64>, _>("schema_id")? else {
        return Ok(None);
    };
    Ok(Some(SchemaRef {
        schema_id,
        version: row.try_get("schema_version")?,
        mode: mode_of(row.try_get("schema_mode")?)?,
        target: target_of(row.try_get("schema_target")?)?,
    }))
}

/// The current schema for `target`, if any.
pub async fn current(
    db: impl PgExecutor<'_>,
    project: Uuid,
    target: SchemaTarget,
) -> DbResult<Option<StoredSchema>> {
    let schema = sqlx::query_as(
        "SELECT * FROM metadata_schemas
         WHERE project_id = $1 AND target = $2 AND retired_at IS NULL",
    )
    .bind(project)
    .bind(target.as_str())
    .fetch_optional(db)
    .await?;
    Ok(schema)
}

/// Every earlier (retired) version for `target`, newest first.
pub async fn versions(
    db: impl PgExecutor<'_>,
    project: Uuid,
    target: SchemaTarget,
) -> DbResult<Vec<StoredSchema>> {
    let schemas = sqlx::query_as(
        "SELECT * FROM metadata_schemas
         WHERE project_id = $1 AND target = $2 AND retired_at IS NOT NULL
         ORDER BY version DESC",
    )
    .bind(project)
    .bind(target.as_str())
    .fetch_all(db)
    .await?;
    Ok(schemas)
}

/// Stores a new version for `target` (one more than the highest so far) and retires the
/// current one. The caller holds the project's row lock, so versions are handed out in turn.
pub async fn insert(
    conn: &mut PgConnection,
    project: Uuid,
    target: SchemaTarget,
    mode: SchemaMode,
    schema: &Value,
    created_by: &str,
) -> DbResult<StoredSchema> {
    retire(&mut *conn, project, target).await?;
    let stored = sqlx::query_as(
        "INSERT INTO metadata_schemas (project_id, target, version, mode, schema, created_by)
         SELECT $1, $2, COALESCE(max(version), 0) + 1, $3, $4, $5
         FROM metadata_schemas WHERE project_id = $1 AND target = $2
         RETURNING *",
    )
    .bind(project)
    .bind(target.as_str())
    .bind(mode.as_str())
    .bind(schema)
    .bind(created_by)
    .fetch_one(&mut *conn)
    .await?;
    Ok(stored)
}

/// Retires the current schema for `target`; `false` if there was none.
pub async fn retire(
    db: impl PgExecutor<'_>,
    project: Uuid,
    target: SchemaTarget,
) -> DbResult<bool> {
    let retired = sqlx::query(
        "UPDATE metadata_schemas SET retired_at = now()
         WHERE project_id = $1 AND target = $2 AND retired_at IS NULL",
    )
    .bind(project)
    .bind(target.as_str())
    .execute(db)
    .await?;
    Ok(retired.rows_affected() == 1)
}

/// The schema document of one version (versions never change, so callers may cache it).
pub async fn document(db: impl PgExecutor<'_>, schema_id: i64) -> DbResult<Option<Value>> {
    let schema = sqlx::query_scalar("SELECT schema FROM metadata_schemas WHERE schema_id = $1")
        .bind(schema_id)
        .fetch_optional(db)
        .await?;
    Ok(schema)
}

/// The schema that applies to a new entry of `data_type` in `project` (the personal project
/// of `user` when `None`).
pub async fn applicable(
    db: impl PgExecutor<'_>,
    project: Option<Uuid>,
    user: &str,
    data_type: CharSourceType,
) -> DbResult<Option<SchemaRef>> {
    const APPLICABLE: &str = concat!(
        "SELECT s.schema_id, s.target AS schema_target, s.version AS schema_version,
                s.mode AS schema_mode
         FROM (SELECT COALESCE($1::uuid, (SELECT project_id FROM projects
                                          WHERE created_by = $2 AND personal)) AS project_id
              ) AS p ",
        applicable_schema!("p.project_id", "$3"),
    );
    let row = sqlx::query(APPLICABLE)
        .bind(project)
        .bind(user)
        .bind(data_type)
        .fetch_one(db)
        .await?;
    Ok(schema_ref(&row)?)
}

/// `WHERE` condition on `data_entries` (unqualified) for the entries `target` is written
/// for in project `$1`: its type's, or for `default` those of types without a schema of
/// their own.
const TARGET_ENTRIES: &str = "project_id = $1 AND CASE WHEN $2 = 'default'
        THEN char_source_type::text NOT IN (
            SELECT target FROM metadata_schemas
            WHERE project_id = $1 AND retired_at IS NULL AND target <> 'default')
        ELSE char_source_type::text = $2 END";

/// How many entries `target` is written for in `project`.
pub async fn count_entries(
    db: impl PgExecutor<'_>,
    project: Uuid,
    target: SchemaTarget,
) -> DbResult<i64> {
    let sql = format!("SELECT count(*) FROM data_entries WHERE {TARGET_ENTRIES}");
    let count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(target.as_str())
        .fetch_one(db)
        .await?;
    Ok(count)
}

/// One entry to recheck: its metadata and the schema that applies to it now.
pub struct EntryToCheck {
    pub data_id: Uuid,
    pub metadata: Value,
    pub schema: Option<SchemaRef>,
}

/// The next `limit` entries (by id, after `after`) that `target` is written for, each with
/// the schema that applies to it now; with `lock`, locked until the transaction ends, so a
/// concurrent write waits and is checked after.
pub async fn entries_to_check(
    conn: &mut PgConnection,
    project: Uuid,
    target: SchemaTarget,
    after: Option<Uuid>,
    limit: i64,
    lock: bool,
) -> DbResult<Vec<EntryToCheck>> {
    let sql = format!(
        "SELECT e.data_id, e.metadata, s.schema_id, s.target AS schema_target,
                s.version AS schema_version, s.mode AS schema_mode
         FROM (SELECT * FROM data_entries
               WHERE {TARGET_ENTRIES} AND ($3::uuid IS NULL OR data_id > $3)
               ORDER BY data_id LIMIT $4 {lock}) AS e {applicable}
         ORDER BY e.data_id",
        lock = if lock { "FOR UPDATE" } else { "" },
        applicable = applicable_schema!("e.project_id", "e.char_source_type"),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .bind(target.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(EntryToCheck {
                data_id: row.try_get("data_id")?,
                metadata: row.try_get("metadata")?,
                schema: schema_ref(row)?,
            })
        })
        .collect()
}

/// What a check found: `None` when no schema applies.
pub type Validity = Option<Vec<SchemaViolation>>;

/// One entry's recheck: what the schema it names (`None`: none applies) found.
pub struct Rechecked {
    pub data_id: Uuid,
    pub schema_id: Option<i64>,
    pub validity: Validity,
}

/// Stores what checks found, and under which version, without touching revision,
/// `last_updated` or the history: validity is derived from the metadata and the schema, both
/// of which are recorded.
pub async fn set_validity(conn: &mut PgConnection, checked: &[Rechecked]) -> DbResult<()> {
    let ids: Vec<Uuid> = checked.iter().map(|entry| entry.data_id).collect();
    let schemas: Vec<Option<i64>> = checked.iter().map(|entry| entry.schema_id).collect();
    let valid: Vec<Option<bool>> = checked
        .iter()
        .map(|entry| entry.validity.as_ref().map(Vec::is_empty))
        .collect();
    let errors: Vec<Option<sqlx::types::Json<&Vec<SchemaViolation>>>> = checked
        .iter()
        .map(|entry| entry.validity.as_ref().map(sqlx::types::Json))
        .collect();
    sqlx::query(
        "UPDATE data_entries AS e
         SET metadata_valid = c.valid, metadata_errors = c.errors,
             metadata_schema_id = c.schema_id
         FROM unnest($1::uuid[], $2::boolean[], $3::jsonb[], $4::bigint[])
              AS c (data_id, valid, errors, schema_id)
         WHERE e.data_id = c.data_id
           AND (e.metadata_valid, e.metadata_errors, e.metadata_schema_id)
               IS DISTINCT FROM (c.valid, c.errors, c.schema_id)",
    )
    .bind(&ids)
    .bind(&valid)
    .bind(&errors)
    .bind(&schemas)
    .execute(conn)
    .await?;
    Ok(())
}
