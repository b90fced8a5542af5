//! `units`: the database's copy of `domain::units`, which converts stored quantities to SI
//! for search. Refreshed from the Rust table at every start, so the two never disagree.

use sqlx::PgConnection;

use super::DbResult;
use crate::domain::units;

/// Makes `units` hold exactly `domain::units::all()`. When that changed anything (the first
/// start after this table appeared, or a release that added a unit), the SI facts of every
/// stored quantity at an indexed path are recomputed, in the same transaction.
pub async fn sync(connection: &mut PgConnection) -> DbResult<()> {
    let all = units::all();
    let symbols: Vec<&str> = all.iter().map(|unit| unit.symbol).collect();
    let dimensions: Vec<&str> = all.iter().map(|unit| unit.dimension.name()).collect();
    let factors: Vec<f64> = all.iter().map(|unit| unit.factor).collect();
    let offsets: Vec<f64> = all.iter().map(|unit| unit.offset).collect();
    let mut transaction = sqlx::Connection::begin(connection).await?;
    let changed: i64 = sqlx::query_scalar(
        r#"WITH wanted (symbol, dimension, factor, "offset") AS (
               SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[])
           ),
           upserted AS (
               INSERT INTO units (symbol, dimension, factor, "offset")
               SELECT * FROM wanted
               ON CONFLICT (symbol) DO UPDATE
                   SET dimension = EXCLUDED.dimension, factor = EXCLUDED.factor,
                       "offset" = EXCLUDED."offset"
                   WHERE (units.dimension, units.factor, units."offset")
                       IS DISTINCT FROM (EXCLUDED.dimension, EXCLUDED.factor, EXCLUDED."offset")
               RETURNING 1
           ),
           removed AS (
               DELETE FROM units WHERE symbol <> ALL($1) RETURNING 1
           )
           SELECT (SELECT count(*) FROM upserted) + (SELECT count(*) FROM removed)"#,
    )
    .bind(&symbols)
    .bind(&dimensions)
    .bind(&factors)
    .bind(&offsets)
    .fetch_one(&mut *transaction)
    .await?;
    if changed > 0 {
        sqlx::query(
            "DELETE FROM metadata_values WHERE kind NOT IN ('present', 'number', 'instant')",
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO metadata_values (data_id, path, kind, value)
             SELECT entry.data_id, indexed.path, fact.kind, fact.value
             FROM metadata_indexed_paths AS indexed
             CROSS JOIN data_entries AS entry
             CROSS JOIN LATERAL metadata_values_at(entry.metadata, indexed.path) AS fact
             WHERE fact.kind NOT IN ('present', 'number', 'instant')",
        )
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(())
}
