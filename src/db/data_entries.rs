use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::access::{self, reachable};
use super::metadata_schemas::{self, SchemaRef, applicable_schema};
use super::{DbResult, metadata_filters};
use crate::domain::history::HistoryRecord;
use crate::domain::metadata_query::IndexedPaths;
use crate::domain::metadata_schema::SchemaViolation;
use crate::domain::search::{Cursor, MetadataPosition, SortValue, metadata_path_documents};
use crate::domain::{
    Access, DataEntry, DataEntryPatch, MetadataLimits, NewDataEntry, Role, SearchQuery, SortKey,
};

/// Who made a change, for the history row written with it.
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub key_id: Uuid,
    pub request_id: Option<&'a str>,
}

/// Inserts the entry into `project` (the caller's personal project when `None`) and its
/// `create` history row, in one statement, if the caller may create entries there and the
/// schema that applies there is the one `check` was made with; `None` if not. The
/// metadata's size is measured by the database, as on every later write
/// (`metadata_within_limits`).
pub async fn insert(
    conn: &mut PgConnection,
    access: Access<'_>,
    project: Option<Uuid>,
    entry: &NewDataEntry,
    limits: &MetadataLimits,
    actor: &Actor<'_>,
    check: &SchemaCheck,
) -> DbResult<Option<DataEntry>> {
    const INSERT: &str = concat!(
        "WITH target AS (
            SELECT COALESCE($14::uuid, (SELECT project_id FROM projects
                                        WHERE created_by = $2 AND personal)) AS project_id
        ), created AS (
            INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type,
                                      pipeline_status, physical_sample_id, raw_size_gb, metadata,
                                      project_id, metadata_valid, metadata_errors,
                                      metadata_schema_id)
            SELECT $1, $2, $3, $4, $5, $6, $7, metadata_within_limits($8, $12, $13),
                   target.project_id, $18, $19, s.schema_id
            FROM target ",
        applicable_schema!("target.project_id", "$4"),
        " WHERE s.schema_id IS NOT DISTINCT FROM $17 AND ",
        reachable!("target.project_id", "$2", "$15", "$16"),
        "   RETURNING *
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, project_id, revision, operation,
                                            changed_at, actor_user_id, actor_key_id, request_id,
                                            changes, schema_target, schema_version)
            SELECT data_id, user_id, project_id, revision, 'create', last_updated, $9, $10, $11,
                   data_entry_changes(NULL, to_jsonb(created)), $20, $21
            FROM created
        )
        SELECT * FROM created"
    );
    let inserted = sqlx::query_as(INSERT)
        .bind(Uuid::now_v7())
        .bind(access.user_id)
        .bind(&entry.raw_name)
        .bind(entry.char_source_type)
        .bind(entry.pipeline_status)
        .bind(entry.physical_sample_id)
        .bind(entry.raw_size_gb)
        .bind(sqlx::types::Json(entry.metadata.as_object()))
        .bind(actor.user_id)
        .bind(actor.key_id)
        .bind(actor.request_id)
        .bind(limit_as_i32(limits.max_keys))
        .bind(limit_as_i32(limits.max_bytes))
        .bind(project)
        .bind(Role::Editor)
        .bind(access.projects)
        .bind(check.schema.map(|schema| schema.schema_id))
        .bind(check.valid())
        .bind(check.errors())
        .bind(check.schema.map(|schema| schema.target.as_str()))
        .bind(check.schema.map(|schema| schema.version))
        .fetch_optional(conn)
        .await?;
    Ok(inserted)
}

/// The entry and the caller's role in its project, if the caller may read it.
pub async fn get(
    conn: &mut PgConnection,
    access: Access<'_>,
    data_id: Uuid,
) -> DbResult<Option<(DataEntry, Role)>> {
    let row = sqlx::query(concat!(
        "SELECT e.*, member.role AS caller_role FROM data_entries AS e ",
        access::role_join!("e.project_id", "$2", "$3"),
        " WHERE e.data_id = $1"
    ))
    .bind(data_id)
    .bind(access.user_id)
    .bind(access.projects)
    .fetch_optional(conn)
    .await?;
    row.map(|row| Ok((DataEntry::from_row(&row)?, row.try_get("caller_role")?)))
        .transpose()
}

/// One lookup of a batch: who asks for which entry.
pub struct Wanted<'a> {
    pub access: Access<'a>,
    pub data_id: Uuid,
}

/// Many entries by id at once, each for its own caller: the i-th element of the answer is
/// the entry `wanted[i]` asked for, if that caller may read it.
pub async fn get_many(
    conn: &mut PgConnection,
    wanted: &[Wanted<'_>],
) -> DbResult<Vec<Option<DataEntry>>> {
    let ids: Vec<Uuid> = wanted.iter().map(|w| w.data_id).collect();
    let users: Vec<&str> = wanted.iter().map(|w| w.access.user_id).collect();
    // Each key's project list as an array literal: arrays of arrays must be rectangular.
    let projects: Vec<Option<String>> = wanted
        .iter()
        .map(|w| {
            w.access.projects.map(|projects| {
                let ids: Vec<String> = projects.iter().map(Uuid::to_string).collect();
                format!("{{{}}}", ids.join(","))
            })
        })
        .collect();
    let rows = sqlx::query(concat!(
        "SELECT w.lookup, e.* FROM unnest($1::uuid[], $2::text[], $3::text[])
                WITH ORDINALITY AS w (data_id, user_id, projects, lookup)
         JOIN data_entries AS e ON e.data_id = w.data_id
         WHERE ",
        reachable!(
            "e.project_id",
            "w.user_id",
            "'viewer'",
            "w.projects::uuid[]"
        )
    ))
    .bind(&ids)
    .bind(&users)
    .bind(&projects)
    .fetch_all(conn)
    .await?;
    let mut found = vec![None; wanted.len()];
    for row in rows {
        let lookup: i64 = row.try_get("lookup")?;
        if let Some(slot) = usize::try_from(lookup - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
        {
            *slot = Some(DataEntry::from_row(&row)?);
        }
    }
    Ok(found)
}

/// How a write treats the metadata document.
#[derive(Debug, Clone, Copy)]
pub enum MetadataWrite<'a> {
    /// RFC 7396 merge of this patch (or leave alone when `None`).
    Merge(Option<&'a Value>),
    /// Replace the whole document.
    Replace(&'a Value),
}

/// Which schema a write's resulting metadata was checked against and what it found.
#[derive(Debug, Clone, Default)]
pub struct SchemaCheck {
    /// `None`: the write expects no schema to apply.
    pub schema: Option<SchemaRef>,
    /// What the schema found (empty: valid); unused when `schema` is `None`.
    pub violations: Vec<SchemaViolation>,
    /// The revision the checked document was merged from: the write applies only to it.
    pub revision: Option<i64>,
    /// Schemas under which the write's result is known valid without checking it.
    pub shortcut: Shortcut,
}

/// The schema versions under which a write's resulting metadata is known valid without
/// checking it (`domain::metadata_schema::Verdict`): if one of them is the one that applies,
/// the write is stored as valid under it, in the same statement.
#[derive(Debug, Clone, Default)]
pub struct Shortcut {
    /// `metadata_schemas.schema_id`s.
    pub schema_ids: Vec<i64>,
    /// Known valid whatever the stored document (a replacement); otherwise only if the
    /// stored document was found valid under the version that applies (a merge decided from
    /// its patch, or a write leaving the document alone).
    pub whatever_stored: bool,
}

impl SchemaCheck {
    fn valid(&self) -> Option<bool> {
        self.schema.map(|_| self.violations.is_empty())
    }

    fn errors(&self) -> Option<sqlx::types::Json<&[SchemaViolation]>> {
        self.schema
            .map(|_| sqlx::types::Json(self.violations.as_slice()))
    }
}

/// What `update` did.
#[derive(Debug)]
pub enum UpdateOutcome {
    Written(DataEntry),
    /// Nothing was written: a schema other than the checked one applies to the result (and
    /// the shortcut did not hold), or the row is no longer at the checked revision. Here is
    /// the row as it is, with the schema that applies, to check again.
    Recheck {
        current: DataEntry,
        schema: Option<SchemaRef>,
    },
    /// Nothing was written for any other reason (missing, not the caller's, the move's
    /// target not the caller's, a stale `If-Match`, or a no-op).
    Nothing,
}

/// Applies a change, and records it in the history, in one statement.
///
/// The row is locked (`before`), every new value is computed from the locked row, so
/// concurrent writers serialise and none loses another's change. Nothing is written when
/// the change would leave the row as it is, or when `expected_revisions` is given and the
/// row is at none of them. Nor when the metadata schema that applies to the result (after a
/// change of type or project too) is not the one `check` names, or the row is not at the
/// revision `check` was made from: then the current row comes back to be checked again, so
/// a document is only ever stored after the schema that applies has seen it.
///
/// Or, when the schema that applies is one of `check.shortcut`'s, the result is known valid
/// under it (for a merge: the stored document was found valid under that same version, as
/// `metadata_schema_id` records), and the write is stored as valid under it.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    conn: &mut PgConnection,
    access: Access<'_>,
    data_id: Uuid,
    patch: &DataEntryPatch,
    metadata: MetadataWrite<'_>,
    expected_revisions: Option<&[i64]>,
    limits: &MetadataLimits,
    actor: &Actor<'_>,
    check: &SchemaCheck,
) -> DbResult<UpdateOutcome> {
    // `merged` is the new metadata, computed once from the locked row; the limits are
    // checked only when the document changes. The history row's `changes` is the same
    // shape `data_entry_changes` gives, written out: these are the columns an update can
    // change, and a merge can only change the top-level metadata keys the patch names, so
    // only those are compared. (It is the costliest part of a PATCH otherwise.)
    const UPDATE: &str = concat!(
        "
        WITH before AS (
            SELECT * FROM data_entries WHERE data_id = $1 AND ",
        reachable!("project_id", "$2", "$19", "$20"),
        " AND ($21::uuid IS NULL OR ",
        reachable!("$21", "$2", "$19", "$20"),
        ") FOR UPDATE
        ), applicable AS (
            SELECT s.schema_id, s.target AS schema_target, s.version AS schema_version,
                   s.mode AS schema_mode,
                   (s.schema_id = ANY($26::bigint[])
                    AND ($27 OR (b.metadata_valid AND b.metadata_schema_id = s.schema_id)))
                   IS TRUE AS shortcut,
                   s.schema_id IS DISTINCT FROM $22
                   OR ($23::bigint IS NOT NULL AND b.revision <> $23) AS unchecked
            FROM before AS b ",
        applicable_schema!(
            "COALESCE($21, b.project_id)",
            "COALESCE($4, b.char_source_type)"
        ),
        "
        ), guard AS (
            SELECT *, unchecked AND NOT shortcut AS stale FROM applicable
        ), merged AS (
            SELECT CASE WHEN $10::jsonb IS NULL THEN b.metadata
                        WHEN $11 THEN $10::jsonb
                        ELSE jsonb_merge_patch(b.metadata, $10::jsonb) END AS metadata
            FROM before AS b
        ), changed AS (
            UPDATE data_entries AS e SET
                raw_name = COALESCE($3, e.raw_name),
                char_source_type = COALESCE($4, e.char_source_type),
                pipeline_status = COALESCE($5, e.pipeline_status),
                physical_sample_id = CASE WHEN $6 THEN $7 ELSE e.physical_sample_id END,
                raw_size_gb = CASE WHEN $8 THEN $9 ELSE e.raw_size_gb END,
                tags = COALESCE($18, e.tags),
                project_id = COALESCE($21, e.project_id),
                metadata = CASE WHEN m.metadata = e.metadata THEN e.metadata
                                ELSE metadata_within_limits(m.metadata, $12, $13) END,
                metadata_valid = CASE WHEN g.shortcut THEN true ELSE $24 END,
                metadata_errors = CASE WHEN g.shortcut THEN '[]'::jsonb ELSE $25 END,
                metadata_schema_id = g.schema_id,
                revision = e.revision + 1,
                last_updated = greatest(now(), e.last_updated + interval '1 microsecond')
            FROM before AS b, merged AS m, guard AS g
            WHERE e.data_id = b.data_id AND NOT g.stale
              AND ($14::bigint[] IS NULL OR e.revision = ANY($14))
              AND (e.raw_name, e.char_source_type, e.pipeline_status, e.physical_sample_id,
                   e.raw_size_gb, e.tags, e.project_id, e.metadata)
                  IS DISTINCT FROM
                  (COALESCE($3, e.raw_name), COALESCE($4, e.char_source_type),
                   COALESCE($5, e.pipeline_status),
                   CASE WHEN $6 THEN $7 ELSE e.physical_sample_id END,
                   CASE WHEN $8 THEN $9 ELSE e.raw_size_gb END,
                   COALESCE($18, e.tags),
                   COALESCE($21, e.project_id),
                   m.metadata)
            RETURNING e.*
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, project_id, revision, operation,
                                            changed_at, actor_user_id, actor_key_id, request_id,
                                            changes, schema_target, schema_version)
            SELECT c.data_id, c.user_id, c.project_id, c.revision, 'update', c.last_updated,
                   $15, $16, $17,
                   field_change('raw_name', b.raw_name, c.raw_name)
                   || field_change('char_source_type', b.char_source_type, c.char_source_type)
                   || field_change('pipeline_status', b.pipeline_status, c.pipeline_status)
                   || field_change('physical_sample_id', b.physical_sample_id,
                                   c.physical_sample_id)
                   || field_change('raw_size_gb', b.raw_size_gb, c.raw_size_gb)
                   || field_change('tags', b.tags, c.tags)
                   || field_change('project_id', b.project_id, c.project_id)
                   || CASE WHEN b.metadata = c.metadata THEN '{}'::jsonb
                      ELSE jsonb_build_object('metadata', (
                          SELECT jsonb_object_agg(k, jsonb_build_object(
                                     'before', b.metadata -> k, 'after', c.metadata -> k))
                          FROM jsonb_object_keys(
                                   CASE WHEN $11 THEN b.metadata || c.metadata
                                        ELSE $10::jsonb END) AS keys (k)
                          WHERE b.metadata -> k IS DISTINCT FROM c.metadata -> k)) END,
                   g.schema_target, g.schema_version
            FROM changed AS c CROSS JOIN before AS b CROSS JOIN guard AS g
        )
        SELECT true AS written, NULL::bigint AS schema_id, NULL::text AS schema_target,
               NULL::integer AS schema_version, NULL::text AS schema_mode, c.*
        FROM changed AS c
        UNION ALL
        SELECT false, g.schema_id, g.schema_target, g.schema_version, g.schema_mode, b.*
        FROM before AS b CROSS JOIN guard AS g WHERE g.stale"
    );
    let (set_sample, sample) = patch.physical_sample_id.clone().into_column();
    let (set_size, size) = patch.raw_size_gb.clone().into_column();
    let (replace, document) = match metadata {
        MetadataWrite::Merge(document) => (false, document),
        MetadataWrite::Replace(document) => (true, Some(document)),
    };
    let row = sqlx::query(UPDATE)
        .bind(data_id)
        .bind(access.user_id)
        .bind(patch.raw_name.as_deref())
        .bind(patch.char_source_type)
        .bind(patch.pipeline_status)
        .bind(set_sample)
        .bind(sample)
        .bind(set_size)
        .bind(size)
        .bind(document.map(sqlx::types::Json))
        .bind(replace)
        .bind(limit_as_i32(limits.max_keys))
        .bind(limit_as_i32(limits.max_bytes))
        .bind(expected_revisions)
        .bind(actor.user_id)
        .bind(actor.key_id)
        .bind(actor.request_id)
        .bind(patch.tags.as_deref())
        .bind(Role::Editor)
        .bind(access.projects)
        .bind(patch.project_id)
        .bind(check.schema.map(|schema| schema.schema_id))
        .bind(check.revision)
        .bind(check.valid())
        .bind(check.errors())
        .bind(&check.shortcut.schema_ids)
        .bind(check.shortcut.whatever_stored)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(UpdateOutcome::Nothing);
    };
    let entry = DataEntry::from_row(&row)?;
    if row.try_get("written")? {
        return Ok(UpdateOutcome::Written(entry));
    }
    Ok(UpdateOutcome::Recheck {
        current: entry,
        schema: metadata_schemas::schema_ref(&row)?,
    })
}

fn limit_as_i32(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

/// Deletes the entry (if at one of `expected_revisions`, when given, and the caller may) and
/// records the deletion in its history; `false` when nothing was deleted.
pub async fn delete(
    conn: &mut PgConnection,
    access: Access<'_>,
    data_id: Uuid,
    expected_revisions: Option<&[i64]>,
    actor: &Actor<'_>,
) -> DbResult<bool> {
    const DELETE: &str = concat!(
        "WITH gone AS (
            DELETE FROM data_entries
            WHERE data_id = $1 AND ($3::bigint[] IS NULL OR revision = ANY($3)) AND ",
        reachable!("project_id", "$2", "$7", "$8"),
        "   RETURNING *
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, project_id, revision, operation,
                                            changed_at, actor_user_id, actor_key_id, request_id,
                                            changes)
            SELECT data_id, user_id, project_id, revision + 1, 'delete',
                   greatest(now(), last_updated + interval '1 microsecond'), $4, $5, $6,
                   data_entry_changes(to_jsonb(gone), NULL)
            FROM gone
        )
        SELECT count(*) FROM gone"
    );
    let deleted: i64 = sqlx::query_scalar(DELETE)
        .bind(data_id)
        .bind(access.user_id)
        .bind(expected_revisions)
        .bind(actor.user_id)
        .bind(actor.key_id)
        .bind(actor.request_id)
        .bind(Role::Editor)
        .bind(access.projects)
        .fetch_one(conn)
        .await?;
    Ok(deleted == 1)
}

/// The history of one entry, newest first, before `before_revision` if given: read only
/// when the caller may read the entry's project. Which project comes first, from the entry's
/// row by primary key (or, once deleted, from its newest history row, by the (data_id,
/// revision) index); only then are its revisions read, by the same index. So a caller that
/// may not read the entry causes the same few index probes however long its history is.
const HISTORY: &str = concat!(
    "
    WITH project AS (
        SELECT project_id FROM data_entries WHERE data_id = $1
        UNION ALL
        (SELECT project_id FROM data_entry_history WHERE data_id = $1
         ORDER BY revision DESC LIMIT 1)
        LIMIT 1
    )
    SELECT data_id, revision, operation, changed_at, actor_user_id, actor_key_id,
           request_id, changes,
           CASE WHEN schema_version IS NOT NULL
                THEN jsonb_build_object('char_source_type', schema_target,
                                        'version', schema_version) END AS schema
    FROM data_entry_history
    WHERE ",
    reachable!("(SELECT project_id FROM project)", "$2", "'viewer'", "$5"),
    "
      AND data_id = $1 AND ($3::bigint IS NULL OR revision < $3)
    ORDER BY revision DESC
    LIMIT $4"
);

pub async fn history(
    pool: &PgPool,
    access: Access<'_>,
    data_id: Uuid,
    before_revision: Option<i64>,
    limit: i64,
) -> DbResult<Vec<HistoryRecord>> {
    let records = sqlx::query_as(HISTORY)
        .bind(data_id)
        .bind(access.user_id)
        .bind(before_revision)
        .bind(limit)
        .bind(access.projects)
        .fetch_all(pool)
        .await?;
    Ok(records)
}

/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of `history` with these arguments: how tests
/// check what reading a history touches. It runs the statement.
pub async fn explain_history(
    pool: &PgPool,
    access: Access<'_>,
    data_id: Uuid,
    before_revision: Option<i64>,
    limit: i64,
) -> DbResult<Value> {
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {HISTORY}");
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(data_id)
        .bind(access.user_id)
        .bind(before_revision)
        .bind(limit)
        .bind(access.projects)
        .fetch_one(pool)
        .await?;
    Ok(plan)
}

/// One page of the entries the caller may read matching `query`.
pub struct SearchPage {
    pub entries: Vec<DataEntry>,
    /// Where the page ended, when more follow.
    pub next: Option<(SortValue, Uuid)>,
}

/// One page of the entries the caller may read matching `query`, and where the next begins.
pub async fn search(
    pool: &PgPool,
    access: Access<'_>,
    query: &SearchQuery,
    indexed: &IndexedPaths,
) -> DbResult<SearchPage> {
    let mut sql = search_sql("SELECT", access, query, indexed);
    let rows = on_search_connection(pool, query, async |connection| {
        Ok(sql.build().fetch_all(connection).await?)
    })
    .await?;
    let has_more = rows.len() as i64 > query.limit;
    let mut entries = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(query.limit as usize) {
        let entry = DataEntry::from_row(row)?;
        last = Some(match query.sort {
            SortKey::UploadDatetime => SortValue::Time(entry.upload_datetime),
            SortKey::LastUpdated => SortValue::Time(entry.last_updated),
            SortKey::Metadata(_) => SortValue::Metadata(MetadataPosition(
                row.try_get("sort_rank")?,
                row.try_get("sort_number")?,
                row.try_get("sort_text")?,
            )),
        });
        entries.push(entry);
    }
    let next = match (has_more, last, entries.last()) {
        (true, Some(value), Some(entry)) => Some((value, entry.data_id)),
        _ => None,
    };
    Ok(SearchPage { entries, next })
}

/// Runs a search statement. With `q=` words it is planned for its own parameters, in a
/// transaction of its own (`SET LOCAL` ends with it): PostgreSQL's cached generic plan cannot
/// see how selective a word is and passes over the word index, 94 ms where the custom plan
/// takes 28 at a million entries (bench/README.md).
async fn on_search_connection<T>(
    pool: &PgPool,
    query: &SearchQuery,
    run: impl AsyncFnOnce(&mut PgConnection) -> DbResult<T>,
) -> DbResult<T> {
    if query.words.is_empty() {
        return run(&mut *pool.acquire().await?).await;
    }
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *transaction)
        .await?;
    let result = run(&mut transaction).await?;
    transaction.commit().await?;
    Ok(result)
}

/// PostgreSQL's plan for `search` (EXPLAIN, not run): how tests and benches check that a
/// filter is answered from an index.
pub async fn explain_search(
    pool: &PgPool,
    access: Access<'_>,
    query: &SearchQuery,
    indexed: &IndexedPaths,
) -> DbResult<String> {
    let mut sql = search_sql("EXPLAIN SELECT", access, query, indexed);
    let lines: Vec<String> = sql.build_query_scalar().fetch_all(pool).await?;
    Ok(lines.join("\n"))
}

/// `<select> … FROM data_entries WHERE <filters> <after the cursor> ORDER BY … LIMIT`.
///
/// Ordered by a metadata path, each row's sort key is computed once (`metadata_sort_key` in
/// FROM), and the keyset comparison spells out the rank ascending (entries without the path
/// stay last) with the value in the asked direction.
fn search_sql(
    select: &str,
    access: Access<'_>,
    query: &SearchQuery,
    indexed: &IndexedPaths,
) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(select);
    let (direction, comparison) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    let column = match &query.sort {
        SortKey::UploadDatetime => "upload_datetime",
        SortKey::LastUpdated => "last_updated",
        SortKey::Metadata(path) => {
            sql.push(
                " data_entries.*, sort.rank AS sort_rank, sort.number AS sort_number, \
                 sort.text AS sort_text \
                 FROM data_entries CROSS JOIN LATERAL metadata_sort_key(metadata, ",
            )
            .push_bind(path.clone())
            .push(") AS sort WHERE ");
            push_filters(&mut sql, access, query, indexed);
            if let Some(Cursor {
                after_value: SortValue::Metadata(MetadataPosition(rank, number, text)),
                after_id,
                ..
            }) = &query.cursor
            {
                sql.push(" AND (sort.rank > ")
                    .push_bind(*rank)
                    .push(" OR (sort.rank = ")
                    .push_bind(*rank)
                    .push(format_args!(
                        " AND (sort.number, sort.text, data_entries.data_id) {comparison} ("
                    ))
                    .push_bind(*number)
                    .push(", ")
                    .push_bind(text.clone())
                    .push(", ")
                    .push_bind(*after_id)
                    .push(")))");
            }
            sql.push(format_args!(
                " ORDER BY sort.rank, sort.number {direction}, sort.text {direction}, \
                 data_entries.data_id {direction} LIMIT "
            ))
            .push_bind(query.limit + 1);
            return sql;
        }
    };
    sql.push(" * FROM data_entries WHERE ");
    push_filters(&mut sql, access, query, indexed);
    if let Some(Cursor {
        after_value: SortValue::Time(after),
        after_id,
        ..
    }) = &query.cursor
    {
        sql.push(format_args!(" AND ({column}, data_id) {comparison} ("))
            .push_bind(*after)
            .push(", ")
            .push_bind(*after_id)
            .push(")");
    }
    sql.push(format_args!(
        " ORDER BY {column} {direction}, data_id {direction} LIMIT "
    ))
    .push_bind(query.limit + 1);
    sql
}

/// How many of the entries the caller may read match `query`, over all pages.
pub async fn count(
    pool: &PgPool,
    access: Access<'_>,
    query: &SearchQuery,
    indexed: &IndexedPaths,
) -> DbResult<i64> {
    let mut sql = QueryBuilder::new("SELECT count(*) FROM data_entries WHERE ");
    push_filters(&mut sql, access, query, indexed);
    on_search_connection(pool, query, async |connection| {
        Ok(sql.build_query_scalar().fetch_one(connection).await?)
    })
    .await
}

/// Pushes the conditions of `query` on `data_entries` (unqualified columns), starting with
/// the caller's access: search, its count, key discovery and facets all choose their
/// entries with this.
pub(super) fn push_filters(
    sql: &mut QueryBuilder<Postgres>,
    access: Access<'_>,
    query: &SearchQuery,
    indexed: &IndexedPaths,
) {
    access::push(sql, "project_id", access, Role::Viewer);
    if !query.project_ids.is_empty() {
        sql.push(" AND project_id = ANY(")
            .push_bind(&query.project_ids)
            .push(")");
    }
    if query.matches_nothing {
        sql.push(" AND false");
    }
    if !query.data_ids.is_empty() {
        sql.push(" AND data_id = ANY(")
            .push_bind(&query.data_ids)
            .push(")");
    }
    if !query.physical_sample_ids.is_empty() {
        sql.push(" AND physical_sample_id = ANY(")
            .push_bind(&query.physical_sample_ids)
            .push(")");
    }
    if let Some(data_type) = query.data_type {
        sql.push(" AND char_source_type = ").push_bind(data_type);
    }
    if let Some(status) = query.status {
        sql.push(" AND pipeline_status = ").push_bind(status);
    }
    match query.metadata_valid {
        Some(Some(valid)) => {
            sql.push(" AND metadata_valid = ").push_bind(valid);
        }
        Some(None) => {
            sql.push(" AND metadata_valid IS NULL");
        }
        None => {}
    }
    for (column, bound, value) in [
        ("upload_datetime", ">=", query.upload_min),
        ("upload_datetime", "<=", query.upload_max),
        ("last_updated", ">=", query.updated_min),
        ("last_updated", "<=", query.updated_max),
    ] {
        if let Some(value) = value {
            sql.push(format_args!(" AND {column} {bound} "))
                .push_bind(value);
        }
    }
    for keyword in &query.keywords {
        let pattern = format!("%{}%", escape_like(keyword));
        sql.push(" AND concat_ws(' ', raw_name, char_source_type, pipeline_status) ILIKE ")
            .push_bind(pattern);
    }
    if !query.words.is_empty() {
        sql.push(" AND entry_words(raw_name, metadata) @@ words_query(")
            .push_bind(&query.words)
            .push(")");
    }
    metadata_filters::push(
        sql,
        query
            .metadata
            .iter()
            .map(|(path, value)| metadata_path_documents(path, value)),
    );
    metadata_filters::push_conditions(sql, &query.metadata_conditions, indexed);
}

/// Makes `%`, `_` and `\` in a keyword match themselves in ILIKE.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
