//! The `/v2` file listing: data entries filtered the Seven Bridges way, paged by offset.

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{DbResult, access, metadata_filters};
use crate::domain::file_query::FileQuery;
use crate::domain::search::metadata_filter_documents;
use crate::domain::{Access, DataEntry, Role};

/// One page of the entries the caller may read matching `query`, oldest upload first.
pub async fn list(
    pool: &PgPool,
    access: Access<'_>,
    query: &FileQuery,
) -> DbResult<Vec<DataEntry>> {
    let mut sql = QueryBuilder::new("SELECT * FROM data_entries WHERE ");
    push_filters(&mut sql, access, query);
    sql.push(" ORDER BY upload_datetime, data_id LIMIT ")
        .push_bind(query.limit)
        .push(" OFFSET ")
        .push_bind(query.offset);
    let entries = sql.build_query_as().fetch_all(pool).await?;
    Ok(entries)
}

/// How many of the entries the caller may read match `query`, over all pages.
pub async fn count(pool: &PgPool, access: Access<'_>, query: &FileQuery) -> DbResult<i64> {
    let mut sql = QueryBuilder::new("SELECT count(*) FROM data_entries WHERE ");
    push_filters(&mut sql, access, query);
    let count = sql.build_query_scalar().fetch_one(pool).await?;
    Ok(count)
}

fn push_filters(sql: &mut QueryBuilder<Postgres>, access: Access<'_>, query: &FileQuery) {
    access::push(sql, "project_id", access, Role::Viewer);
    if let Some(project) = query.project_id {
        sql.push(" AND project_id = ").push_bind(project);
    }
    if !query.origin.is_empty() {
        // No labcat file was made by a task, so no origin filter can match.
        sql.push(" AND false");
    }
    if !query.names.is_empty() {
        sql.push(" AND raw_name = ANY(")
            .push_bind(query.names.clone())
            .push(")");
    }
    if !query.tags.is_empty() {
        sql.push(" AND tags && ").push_bind(query.tags.clone());
    }
    metadata_filters::push(
        sql,
        query.metadata.iter().map(|(key, values)| {
            values
                .iter()
                .flat_map(|value| metadata_filter_documents(key, value))
                .collect()
        }),
    );
}
