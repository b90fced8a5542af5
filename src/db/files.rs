//! The `/v2` file listing: data entries filtered the Seven Bridges way, paged by offset.

use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{DbResult, metadata_filters};
use crate::domain::DataEntry;
use crate::domain::file_query::FileQuery;
use crate::domain::search::metadata_filter_documents;

/// One page of the owner's entries matching `query`, oldest upload first.
pub async fn list(pool: &PgPool, owner: &str, query: &FileQuery) -> DbResult<Vec<DataEntry>> {
    let mut sql = QueryBuilder::new("SELECT * FROM data_entries WHERE ");
    push_filters(&mut sql, owner, query);
    sql.push(" ORDER BY upload_datetime, data_id LIMIT ")
        .push_bind(query.limit)
        .push(" OFFSET ")
        .push_bind(query.offset);
    let entries = sql.build_query_as().fetch_all(pool).await?;
    Ok(entries)
}

/// How many of the owner's entries match `query`, over all pages.
pub async fn count(pool: &PgPool, owner: &str, query: &FileQuery) -> DbResult<i64> {
    let mut sql = QueryBuilder::new("SELECT count(*) FROM data_entries WHERE ");
    push_filters(&mut sql, owner, query);
    let count = sql.build_query_scalar().fetch_one(pool).await?;
    Ok(count)
}

fn push_filters(sql: &mut QueryBuilder<Postgres>, owner: &str, query: &FileQuery) {
    sql.push("user_id = ").push_bind(owner.to_owned());
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
