//! Key discovery and facets in SQL. Both choose their entries with search's own
//! `push_filters`, which starts with the caller's access predicate, so nothing outside what
//! the caller may read is ever counted; and each answer is one statement, so one snapshot.

use std::collections::BTreeMap;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::DbResult;
use super::data_entries::push_filters;
use super::metadata_filters::at;
use crate::domain::Access;
use crate::domain::discovery::{
    FACET_VALUES, Facet, FacetCounts, FacetValue, FacetsQuery, KeysQuery, MAX_KEYS, MetadataKey,
    TypeCounts,
};
use crate::domain::metadata_query::IndexedPaths;

/// The leaf types `metadata_leaves` reports, in the order the statement counts them.
const TYPES: [&str; 7] = [
    "string", "number", "quantity", "boolean", "null", "object", "array",
];

/// Runs the statement with JIT compilation off. PostgreSQL guesses a hundred rows for every
/// `jsonb_each`, `jsonb_array_elements` and `jsonb_path_query` call, compounded through
/// the walk, so it takes a statement over a few thousand small documents for billions of
/// rows and compiles it: measured on 20,000 small documents, 1.4 s of a 3.9 s statement
/// was JIT compilation (`metadata_values_maintain` turns it off for the same reason). `SET LOCAL` needs a
/// transaction; it ends with the statement.
async fn fetch_without_jit(
    pool: &PgPool,
    sql: &mut QueryBuilder<Postgres>,
) -> DbResult<Vec<PgRow>> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL jit = off")
        .execute(&mut *transaction)
        .await?;
    let rows = sql.build().fetch_all(&mut *transaction).await?;
    transaction.commit().await?;
    Ok(rows)
}

/// The metadata paths of the entries the caller may read that `query` selects, most
/// frequent first (then by path, bytewise), at most `MAX_KEYS`.
///
/// Every leaf of every document (`metadata_leaves`: scalars, quantities, empty objects and
/// arrays; array elements at the array's path) but what lies inside a quantity, each
/// (entry, path, type, unit) once; then counted per path, per type and per unit. The path
/// is written as `write_path` writes it, in SQL, so `prefix`, the order and the cap all
/// apply before anything leaves the database.
pub async fn metadata_keys(
    pool: &PgPool,
    access: Access<'_>,
    query: &KeysQuery,
    indexed: &IndexedPaths,
) -> DbResult<Vec<MetadataKey>> {
    let mut sql = QueryBuilder::<Postgres>::new(
        "WITH entry AS (SELECT data_id, metadata FROM data_entries WHERE ",
    );
    push_filters(&mut sql, access, &query.entries, indexed);
    sql.push(
        r#"), leaf AS (
            SELECT DISTINCT entry.data_id, leaf.path, leaf.type,
                   CASE WHEN leaf.type = 'quantity' THEN leaf.value ->> 'unit' END AS unit
            FROM entry CROSS JOIN LATERAL metadata_leaves(entry.metadata) AS leaf
            WHERE NOT leaf.in_quantity
        ), per_path AS (
            SELECT path, count(DISTINCT data_id) AS entries"#,
    );
    for (i, type_name) in TYPES.iter().enumerate() {
        // The type names are this module's constants, not request text.
        sql.push(format_args!(
            ", count(DISTINCT data_id) FILTER (WHERE type = '{type_name}') AS t{i}"
        ));
    }
    sql.push(
        r#"
            FROM leaf GROUP BY path
        ), written AS (
            SELECT per_path.*,
                   (SELECT string_agg(replace(replace(replace(replace(
                               key, '\', '\\'), '.', '\.'), '[', '\['), ']', '\]'),
                           '.' ORDER BY at)
                    FROM unnest(per_path.path) WITH ORDINALITY AS k (key, at)) AS written
            FROM per_path
        ), top AS (
            SELECT * FROM written WHERE "#,
    );
    match &query.prefix {
        Some(prefix) if !prefix.is_empty() => {
            sql.push("starts_with(written, ")
                .push_bind(prefix)
                .push(")");
        }
        _ => {
            sql.push("true");
        }
    }
    sql.push(r#" ORDER BY entries DESC, written COLLATE "C" LIMIT "#)
        .push_bind(MAX_KEYS)
        .push(
            r#"
        ), per_unit AS (
            SELECT path, jsonb_object_agg(unit, entries) AS units
            FROM (SELECT leaf.path, leaf.unit, count(*) AS entries
                  FROM leaf JOIN top USING (path)
                  WHERE leaf.unit IS NOT NULL
                  GROUP BY leaf.path, leaf.unit) AS counted
            GROUP BY path
        )
        SELECT top.*, per_unit.units
        FROM top LEFT JOIN per_unit USING (path)
        ORDER BY top.entries DESC, top.written COLLATE "C""#,
        );
    let rows = fetch_without_jit(pool, &mut sql).await?;
    rows.iter()
        .map(|row| {
            let count = |i: usize| row.try_get::<i64, _>(format!("t{i}").as_str());
            let units: Option<sqlx::types::Json<BTreeMap<String, i64>>> = row.try_get("units")?;
            Ok(MetadataKey {
                path: row.try_get("written")?,
                count: row.try_get("entries")?,
                types: TypeCounts {
                    string: count(0)?,
                    number: count(1)?,
                    quantity: count(2)?,
                    boolean: count(3)?,
                    null: count(4)?,
                    object: count(5)?,
                    array: count(6)?,
                },
                units: units.map(|units| units.0),
            })
        })
        .collect()
}

/// The `FACET_VALUES` most frequent values of each facet over the entries the caller may
/// read that `query.entries` selects (ties by value, in PostgreSQL's jsonb order), in one
/// statement: one snapshot for every facet.
///
/// The selected entries are a CTE that is not materialised: each facet runs the filters
/// itself, with whatever index suits them, rather than all facets reading a copy of every
/// selected document.
pub async fn facets(
    pool: &PgPool,
    access: Access<'_>,
    query: &FacetsQuery,
    indexed: &IndexedPaths,
) -> DbResult<FacetCounts> {
    let mut sql = QueryBuilder::<Postgres>::new(
        "WITH entry AS NOT MATERIALIZED (SELECT * FROM data_entries WHERE ",
    );
    push_filters(&mut sql, access, &query.entries, indexed);
    sql.push(") SELECT facet, value, entries FROM (");
    for (i, (_, facet)) in query.facets.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("(SELECT ")
            .push_bind(i as i32)
            .push("::int AS facet, value, count(*) AS entries FROM (");
        match facet {
            Facet::Column(column) => {
                // The column is one of `FacetColumn`'s names, not request text.
                let column = column.column();
                sql.push(format_args!(
                    "SELECT to_jsonb({column}) AS value FROM entry WHERE {column} IS NOT NULL"
                ));
            }
            Facet::Metadata(path) => {
                // Lax mode: arrays on the way and at the end are unwrapped, and a path
                // through a scalar finds nothing rather than failing.
                sql.push(
                    "SELECT DISTINCT entry.data_id, found.value FROM entry \
                     CROSS JOIN LATERAL jsonb_path_query(entry.metadata, ",
                )
                .push_bind(format!("{}[*]", at(path)))
                .push("::jsonpath, '{}', true) AS found (value)");
            }
        }
        sql.push(") AS found GROUP BY value ORDER BY entries DESC, value LIMIT ")
            .push_bind(FACET_VALUES)
            .push(")");
    }
    sql.push(") AS counted ORDER BY facet, entries DESC, value");
    let rows = fetch_without_jit(pool, &mut sql).await?;
    let mut counts: Vec<(String, Vec<FacetValue>)> = query
        .facets
        .iter()
        .map(|(name, _)| (name.clone(), Vec::new()))
        .collect();
    for row in rows {
        let facet: i32 = row.try_get("facet")?;
        if let Some((_, values)) = usize::try_from(facet).ok().and_then(|i| counts.get_mut(i)) {
            values.push(FacetValue {
                value: row.try_get("value")?,
                count: row.try_get("entries")?,
            });
        }
    }
    Ok(FacetCounts(counts))
}
