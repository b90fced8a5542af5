use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{DbResult, metadata_filters};
use crate::domain::history::HistoryRecord;
use crate::domain::search::metadata_filter_documents;
use crate::domain::{DataEntry, DataEntryPatch, MetadataLimits, NewDataEntry, SearchQuery};

/// Who made a change, for the history row written with it.
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub key_id: Uuid,
    pub request_id: Option<&'a str>,
}

/// Inserts the entry and its `create` history row in one statement. The metadata's size
/// is measured by the database, as on every later write (`metadata_within_limits`).
pub async fn insert(
    conn: &mut PgConnection,
    owner: &str,
    entry: &NewDataEntry,
    limits: &MetadataLimits,
    actor: &Actor<'_>,
) -> DbResult<DataEntry> {
    let inserted = sqlx::query_as(
        "WITH created AS (
            INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type,
                                      pipeline_status, physical_sample_id, raw_size_gb, metadata)
            VALUES ($1, $2, $3, $4, $5, $6, $7, metadata_within_limits($8, $12, $13))
            RETURNING *
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, revision, operation, changed_at,
                                            actor_user_id, actor_key_id, request_id, changes)
            SELECT data_id, user_id, revision, 'create', last_updated, $9, $10, $11,
                   data_entry_changes(NULL, to_jsonb(created))
            FROM created
        )
        SELECT * FROM created",
    )
    .bind(Uuid::now_v7())
    .bind(owner)
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
    .fetch_one(conn)
    .await?;
    Ok(inserted)
}

pub async fn get(
    conn: &mut PgConnection,
    owner: &str,
    data_id: Uuid,
) -> DbResult<Option<DataEntry>> {
    let entry = sqlx::query_as("SELECT * FROM data_entries WHERE data_id = $1 AND user_id = $2")
        .bind(data_id)
        .bind(owner)
        .fetch_optional(conn)
        .await?;
    Ok(entry)
}

/// Many entries by id at once, each scoped to its own owner: `wanted` pairs
/// (owner, data_id). Entries that are missing or owned by someone else are simply absent.
pub async fn get_many(
    conn: &mut PgConnection,
    wanted: &[(&str, Uuid)],
) -> DbResult<Vec<DataEntry>> {
    let owners: Vec<&str> = wanted.iter().map(|(owner, _)| *owner).collect();
    let ids: Vec<Uuid> = wanted.iter().map(|(_, id)| *id).collect();
    let entries = sqlx::query_as(
        "SELECT e.* FROM data_entries AS e
         WHERE (e.data_id, e.user_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
    )
    .bind(&ids)
    .bind(&owners)
    .fetch_all(conn)
    .await?;
    Ok(entries)
}

/// How a write treats the metadata document.
pub enum MetadataWrite<'a> {
    /// RFC 7396 merge of this patch (or leave alone when `None`).
    Merge(Option<&'a Value>),
    /// Replace the whole document.
    Replace(&'a Value),
}

/// Applies a change, and records it in the history, in one statement.
///
/// The row is locked (`before`), every new value is computed from the locked row, so
/// concurrent writers serialise and none loses another's change. Nothing is written when
/// the change would leave the row as it is, or when `expected_revisions` is given and the
/// row is at none of them: then `None` comes back and the caller looks at the current row.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    conn: &mut PgConnection,
    owner: &str,
    data_id: Uuid,
    patch: &DataEntryPatch,
    metadata: MetadataWrite<'_>,
    expected_revisions: Option<&[i64]>,
    limits: &MetadataLimits,
    actor: &Actor<'_>,
) -> DbResult<Option<DataEntry>> {
    // `merged` is the new metadata, computed once from the locked row; the limits are
    // checked only when the document changes. The history row's `changes` is the same
    // shape `data_entry_changes` gives, written out: these are the columns an update can
    // change, and a merge can only change the top-level metadata keys the patch names, so
    // only those are compared. (It is the costliest part of a PATCH otherwise.)
    const UPDATE: &str = "
        WITH before AS (
            SELECT * FROM data_entries WHERE data_id = $1 AND user_id = $2 FOR UPDATE
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
                metadata = CASE WHEN m.metadata = e.metadata THEN e.metadata
                                ELSE metadata_within_limits(m.metadata, $12, $13) END,
                revision = e.revision + 1,
                last_updated = greatest(now(), e.last_updated + interval '1 microsecond')
            FROM before AS b, merged AS m
            WHERE e.data_id = b.data_id
              AND ($14::bigint[] IS NULL OR e.revision = ANY($14))
              AND (e.raw_name, e.char_source_type, e.pipeline_status, e.physical_sample_id,
                   e.raw_size_gb, e.tags, e.metadata)
                  IS DISTINCT FROM
                  (COALESCE($3, e.raw_name), COALESCE($4, e.char_source_type),
                   COALESCE($5, e.pipeline_status),
                   CASE WHEN $6 THEN $7 ELSE e.physical_sample_id END,
                   CASE WHEN $8 THEN $9 ELSE e.raw_size_gb END,
                   COALESCE($18, e.tags),
                   m.metadata)
            RETURNING e.*
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, revision, operation, changed_at,
                                            actor_user_id, actor_key_id, request_id, changes)
            SELECT c.data_id, c.user_id, c.revision, 'update', c.last_updated, $15, $16, $17,
                   field_change('raw_name', b.raw_name, c.raw_name)
                   || field_change('char_source_type', b.char_source_type, c.char_source_type)
                   || field_change('pipeline_status', b.pipeline_status, c.pipeline_status)
                   || field_change('physical_sample_id', b.physical_sample_id,
                                   c.physical_sample_id)
                   || field_change('raw_size_gb', b.raw_size_gb, c.raw_size_gb)
                   || field_change('tags', b.tags, c.tags)
                   || CASE WHEN b.metadata = c.metadata THEN '{}'::jsonb
                      ELSE jsonb_build_object('metadata', (
                          SELECT jsonb_object_agg(k, jsonb_build_object(
                                     'before', b.metadata -> k, 'after', c.metadata -> k))
                          FROM jsonb_object_keys(
                                   CASE WHEN $11 THEN b.metadata || c.metadata
                                        ELSE $10::jsonb END) AS keys (k)
                          WHERE b.metadata -> k IS DISTINCT FROM c.metadata -> k)) END
            FROM changed AS c CROSS JOIN before AS b
        )
        SELECT * FROM changed";
    let (set_sample, sample) = patch.physical_sample_id.clone().into_column();
    let (set_size, size) = patch.raw_size_gb.clone().into_column();
    let (replace, document) = match metadata {
        MetadataWrite::Merge(document) => (false, document),
        MetadataWrite::Replace(document) => (true, Some(document)),
    };
    let entry = sqlx::query_as(UPDATE)
        .bind(data_id)
        .bind(owner)
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
        .fetch_optional(conn)
        .await?;
    Ok(entry)
}

fn limit_as_i32(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

/// Deletes the entry (if at one of `expected_revisions`, when given) and records the
/// deletion in its history; `false` when nothing was deleted.
pub async fn delete(
    conn: &mut PgConnection,
    owner: &str,
    data_id: Uuid,
    expected_revisions: Option<&[i64]>,
    actor: &Actor<'_>,
) -> DbResult<bool> {
    let deleted: i64 = sqlx::query_scalar(
        "WITH gone AS (
            DELETE FROM data_entries
            WHERE data_id = $1 AND user_id = $2 AND ($3::bigint[] IS NULL OR revision = ANY($3))
            RETURNING *
        ), recorded AS (
            INSERT INTO data_entry_history (data_id, owner_id, revision, operation, changed_at,
                                            actor_user_id, actor_key_id, request_id, changes)
            SELECT data_id, user_id, revision + 1, 'delete',
                   greatest(now(), last_updated + interval '1 microsecond'), $4, $5, $6,
                   data_entry_changes(to_jsonb(gone), NULL)
            FROM gone
        )
        SELECT count(*) FROM gone",
    )
    .bind(data_id)
    .bind(owner)
    .bind(expected_revisions)
    .bind(actor.user_id)
    .bind(actor.key_id)
    .bind(actor.request_id)
    .fetch_one(conn)
    .await?;
    Ok(deleted == 1)
}

/// The history of one entry, newest first, before `before_revision` if given: read only
/// when `owner` owns the entry. Whose it is comes first, from the entry's row by primary
/// key (or, once deleted, from its newest history row, by the (data_id, revision) index);
/// only then are its revisions read, by the same index. So a caller that does not own the
/// entry causes the same few index probes however long someone else's history is.
const HISTORY: &str = "
    WITH owner AS (
        SELECT user_id FROM data_entries WHERE data_id = $1
        UNION ALL
        (SELECT owner_id FROM data_entry_history WHERE data_id = $1
         ORDER BY revision DESC LIMIT 1)
        LIMIT 1
    )
    SELECT data_id, revision, operation, changed_at, actor_user_id, actor_key_id,
           request_id, changes
    FROM data_entry_history
    WHERE (SELECT user_id FROM owner) = $2
      AND data_id = $1 AND owner_id = $2 AND ($3::bigint IS NULL OR revision < $3)
    ORDER BY revision DESC
    LIMIT $4";

pub async fn history(
    pool: &PgPool,
    owner: &str,
    data_id: Uuid,
    before_revision: Option<i64>,
    limit: i64,
) -> DbResult<Vec<HistoryRecord>> {
    let records = sqlx::query_as(HISTORY)
        .bind(data_id)
        .bind(owner)
        .bind(before_revision)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(records)
}

/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of `history` with these arguments: how tests
/// check what reading a history touches. It runs the statement.
pub async fn explain_history(
    pool: &PgPool,
    owner: &str,
    data_id: Uuid,
    before_revision: Option<i64>,
    limit: i64,
) -> DbResult<Value> {
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {HISTORY}");
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(data_id)
        .bind(owner)
        .bind(before_revision)
        .bind(limit)
        .fetch_one(pool)
        .await?;
    Ok(plan)
}

/// One page of the owner's entries matching `query`, and whether more follow.
pub async fn search(
    pool: &PgPool,
    owner: &str,
    query: &SearchQuery,
) -> DbResult<(Vec<DataEntry>, bool)> {
    let mut sql = search_sql("SELECT * FROM data_entries WHERE ", owner, query);
    let mut entries: Vec<DataEntry> = sql.build_query_as().fetch_all(pool).await?;
    let has_more = entries.len() as i64 > query.limit;
    entries.truncate(query.limit as usize);
    Ok((entries, has_more))
}

/// PostgreSQL's plan for `search` (EXPLAIN, not run): how tests and benches check that a
/// filter is answered from an index.
pub async fn explain_search(pool: &PgPool, owner: &str, query: &SearchQuery) -> DbResult<String> {
    let mut sql = search_sql("EXPLAIN SELECT * FROM data_entries WHERE ", owner, query);
    let lines: Vec<String> = sql.build_query_scalar().fetch_all(pool).await?;
    Ok(lines.join("\n"))
}

fn search_sql(select: &str, owner: &str, query: &SearchQuery) -> QueryBuilder<Postgres> {
    let mut sql = QueryBuilder::new(select);
    push_filters(&mut sql, owner, query);
    let column = query.sort.column();
    let (direction, comparison) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(cursor) = &query.cursor {
        sql.push(format_args!(" AND ({column}, data_id) {comparison} ("))
            .push_bind(cursor.after_value)
            .push(", ")
            .push_bind(cursor.after_id)
            .push(")");
    }
    sql.push(format_args!(
        " ORDER BY {column} {direction}, data_id {direction} LIMIT "
    ))
    .push_bind(query.limit + 1);
    sql
}

/// How many of the owner's entries match `query`, over all pages.
pub async fn count(pool: &PgPool, owner: &str, query: &SearchQuery) -> DbResult<i64> {
    let mut sql = QueryBuilder::new("SELECT count(*) FROM data_entries WHERE ");
    push_filters(&mut sql, owner, query);
    let count = sql.build_query_scalar().fetch_one(pool).await?;
    Ok(count)
}

fn push_filters(sql: &mut QueryBuilder<Postgres>, owner: &str, query: &SearchQuery) {
    sql.push("user_id = ").push_bind(owner);
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
    metadata_filters::push(
        sql,
        query
            .metadata
            .iter()
            .map(|(key, value)| metadata_filter_documents(key, value)),
    );
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
