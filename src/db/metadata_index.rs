//! `metadata_indexed_paths`: the paths search keeps facts for, made equal to the settings'
//! `search.indexed_paths` at every start.

use sqlx::{PgExecutor, PgPool};

use super::DbResult;
use crate::domain::metadata_query::IndexedPaths;

/// Makes the database index exactly `paths`, in one transaction: the facts of a newly
/// declared path are computed over every stored entry, those of a path no longer declared
/// are dropped (each path is a partition of `metadata_values`, created or dropped with its
/// facts). Writes to entries wait meanwhile (one that slipped in between would miss its
/// facts), and so do searches while a partition is created; when nothing changed, nothing
/// is locked.
pub async fn sync(pool: &PgPool, paths: &[Vec<String>]) -> DbResult<IndexedPaths> {
    let indexed = IndexedPaths::new(paths.iter().cloned());
    // The usual start: nothing to change, so no lock that would hold back other instances'
    // writes. A concurrent change of the declared set is serialised by the lock below.
    let stored = stored_paths(pool).await?;
    if stored.len() == indexed.len() && stored.iter().all(|path| indexed.contains(path)) {
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
    // Read again under the lock: another instance may have synced meanwhile.
    let stored = stored_paths(&mut *transaction).await?;
    for path in stored.iter().filter(|path| !indexed.contains(path)) {
        sqlx::query("SELECT metadata_index_forget($1)")
            .bind(path)
            .execute(&mut *transaction)
            .await?;
    }
    let added: Vec<&Vec<String>> = indexed
        .iter()
        .filter(|path| !stored.contains(path))
        .collect();
    for path in &added {
        sqlx::query("SELECT metadata_index_declare($1)")
            .bind(path)
            .execute(&mut *transaction)
            .await?;
    }
    if !added.is_empty() {
        // The new partitions' statistics, before the first search plans with them.
        sqlx::query("ANALYZE metadata_values")
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    if !added.is_empty() {
        tracing::info!(paths = ?added, "indexed newly declared metadata paths");
    }
    Ok(indexed)
}

async fn stored_paths<'c>(executor: impl PgExecutor<'c>) -> DbResult<Vec<Vec<String>>> {
    Ok(
        sqlx::query_scalar("SELECT path FROM metadata_indexed_paths")
            .fetch_all(executor)
            .await?,
    )
}
