//! Metadata filters in SQL, shaped so a row's document is read at most twice however many
//! filters a request carries.

use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

/// Pushes ` AND …` requiring the metadata to contain, for every filter, one of its documents.
///
/// The first filter stays in the statement, where the GIN index on `metadata` answers it. The
/// rest go to `metadata_contains_all` in one call, which fetches and decompresses the document
/// once for all of them: each `metadata @> $n` in a WHERE clause reads it again, and 32
/// filters on an entry holding a large array made a search read it 64 times per row.
pub fn push(sql: &mut QueryBuilder<Postgres>, filters: impl IntoIterator<Item = Vec<Value>>) {
    let mut filters = filters.into_iter();
    let Some(first) = filters.next() else {
        return;
    };
    sql.push(" AND (");
    for (i, document) in first.into_iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("metadata @> ").push_bind(document);
    }
    sql.push(")");
    let rest: Vec<Value> = filters.map(Value::Array).collect();
    if !rest.is_empty() {
        sql.push(" AND metadata_contains_all(metadata, ")
            .push_bind(Value::Array(rest))
            .push(")");
    }
}
