//! `metadata_indexed_paths`: the paths search keeps facts for, made equal to the settings'
//! `search.indexed_paths` at every start.

use serde_json::Value;
use sqlx::PgPool;

use super::DbResult;
use crate::domain::metadata_query::IndexedPaths;

/// Makes the database index exactly `paths`, in one transaction: the facts of a newly
/// declared path are computed over every stored entry, those of a path no longer declared
/// are dropped. Writes to entries wait meanwhile (one that slipped in between would miss its
/// facts); when nothing changed that is a moment.
pub async fn sync(pool: &PgPool, paths: &[Vec<String>]) -> DbResult<IndexedPaths> {
    let indexed = IndexedPaths::new(paths.iter().cloned());
    // The usual start: nothing to change, so no lock that would hold back other instances'
    // writes. A concurrent change of the declared set is serialised by the lock below.
    let stored: Vec<Vec<String>> = sqlx::query_scalar("SELECT path FROM metadata_indexed_paths")
        .fetch_all(pool)
        .await?;
    if stored.len() == paths.len() && stored.iter().all(|path| indexed.contains(path)) {
        return Ok(indexed);
    }
    let mut transaction = pool.begin().await?;
    // Filling a path over a million entries rightly runs longer than statement_timeout.
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("LOCK TABLE metadata_indexed_paths, data_entries IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *transaction)
        .await?;
    let added: Vec<Vec<String>> = sqlx::query_scalar(
        "WITH wanted AS (
             SELECT ARRAY(SELECT jsonb_array_elements_text(declared.path)) AS path
             FROM jsonb_array_elements($1::jsonb) AS declared (path)
         ),
         dropped AS (
             DELETE FROM metadata_indexed_paths
             WHERE path NOT IN (SELECT path FROM wanted)
             RETURNING path
         ),
         forgotten AS (
             DELETE FROM metadata_values WHERE path IN (SELECT path FROM dropped)
         ),
         added AS (
             INSERT INTO metadata_indexed_paths (path)
             SELECT path FROM wanted
             ON CONFLICT (path) DO NOTHING
             RETURNING path
         ),
         filled AS (
             INSERT INTO metadata_values (data_id, path, kind, value)
             SELECT entry.data_id, added.path, fact.kind, fact.value
             FROM added
             CROSS JOIN data_entries AS entry
             CROSS JOIN LATERAL metadata_values_at(entry.metadata, added.path) AS fact
         )
         SELECT path FROM added",
    )
    .bind(Value::from(paths.to_vec()))
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    if !added.is_empty() {
        tracing::info!(paths = ?added, "indexed newly declared metadata paths");
    }
    Ok(indexed)
}
