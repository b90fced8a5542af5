use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::DbResult;
use crate::domain::search::metadata_filter_documents;
use crate::domain::{DataEntry, DataEntryPatch, MetadataLimits, NewDataEntry, SearchQuery};

pub async fn insert(pool: &PgPool, owner: &str, entry: &NewDataEntry) -> DbResult<DataEntry> {
    let inserted = sqlx::query_as(
        "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, pipeline_status,
                                   physical_sample_id, raw_size_gb, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(owner)
    .bind(&entry.raw_name)
    .bind(entry.char_source_type)
    .bind(entry.pipeline_status)
    .bind(entry.physical_sample_id)
    .bind(entry.raw_size_gb)
    .bind(sqlx::types::Json(entry.metadata.as_object()))
    .fetch_one(pool)
    .await?;
    Ok(inserted)
}

pub async fn get(pool: &PgPool, owner: &str, data_id: Uuid) -> DbResult<Option<DataEntry>> {
    let entry = sqlx::query_as("SELECT * FROM data_entries WHERE data_id = $1 AND user_id = $2")
        .bind(data_id)
        .bind(owner)
        .fetch_optional(pool)
        .await?;
    Ok(entry)
}

/// How a write treats the metadata document.
pub enum MetadataWrite<'a> {
    /// RFC 7396 merge of this patch (or leave alone when `None`).
    Merge(Option<&'a serde_json::Value>),
    /// Replace the whole document.
    Replace(&'a serde_json::Value),
}

/// Applies a change in one statement. The UPDATE takes the row lock and computes every
/// new value from the row it locked, so concurrent writers serialise and none loses
/// another's change. A change that would leave the row as it is writes nothing: the
/// revision and `last_updated` stay, and the current row comes back.
/// `None` means no such entry for this owner.
pub async fn update(
    pool: &PgPool,
    owner: &str,
    data_id: Uuid,
    patch: &DataEntryPatch,
    metadata: MetadataWrite<'_>,
    limits: &MetadataLimits,
) -> DbResult<Option<DataEntry>> {
    // The new metadata, `(CASE WHEN $11 THEN $10 ELSE jsonb_merge_patch(...) END)`, appears
    // twice: once to decide whether anything changes, once to write it.
    const UPDATE: &str = "
        WITH changed AS (
            UPDATE data_entries AS e SET
                raw_name = COALESCE($3, e.raw_name),
                char_source_type = COALESCE($4, e.char_source_type),
                pipeline_status = COALESCE($5, e.pipeline_status),
                physical_sample_id = CASE WHEN $6 THEN $7 ELSE e.physical_sample_id END,
                raw_size_gb = CASE WHEN $8 THEN $9 ELSE e.raw_size_gb END,
                metadata = metadata_within_limits(
                    (CASE WHEN $11 THEN $10::jsonb
                          ELSE jsonb_merge_patch(e.metadata, $10::jsonb) END),
                    $12, $13),
                revision = e.revision + 1,
                last_updated = greatest(now(), e.last_updated + interval '1 microsecond')
            WHERE e.data_id = $1 AND e.user_id = $2
              AND (e.raw_name, e.char_source_type, e.pipeline_status, e.physical_sample_id,
                   e.raw_size_gb, e.metadata)
                  IS DISTINCT FROM
                  (COALESCE($3, e.raw_name), COALESCE($4, e.char_source_type),
                   COALESCE($5, e.pipeline_status),
                   CASE WHEN $6 THEN $7 ELSE e.physical_sample_id END,
                   CASE WHEN $8 THEN $9 ELSE e.raw_size_gb END,
                   (CASE WHEN $11 THEN $10::jsonb
                         ELSE jsonb_merge_patch(e.metadata, $10::jsonb) END))
            RETURNING e.*
        )
        SELECT * FROM changed
        UNION ALL
        SELECT * FROM data_entries
        WHERE data_id = $1 AND user_id = $2 AND NOT EXISTS (SELECT 1 FROM changed)";
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
        .fetch_optional(pool)
        .await?;
    Ok(entry)
}

fn limit_as_i32(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

pub async fn delete(pool: &PgPool, owner: &str, data_id: Uuid) -> DbResult<bool> {
    let result = sqlx::query("DELETE FROM data_entries WHERE data_id = $1 AND user_id = $2")
        .bind(data_id)
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// One page of the owner's entries matching `query`, and whether more follow.
pub async fn search(
    pool: &PgPool,
    owner: &str,
    query: &SearchQuery,
) -> DbResult<(Vec<DataEntry>, bool)> {
    let mut sql = QueryBuilder::new("SELECT * FROM data_entries WHERE ");
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
    let mut entries: Vec<DataEntry> = sql.build_query_as().fetch_all(pool).await?;
    let has_more = entries.len() as i64 > query.limit;
    entries.truncate(query.limit as usize);
    Ok((entries, has_more))
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
    for (key, value) in &query.metadata {
        sql.push(" AND (");
        for (i, document) in metadata_filter_documents(key, value)
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                sql.push(" OR ");
            }
            sql.push("metadata @> ").push_bind(document);
        }
        sql.push(")");
    }
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
