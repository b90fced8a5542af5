//! SQL, and only SQL. Every query binds its parameters.

mod access;
pub mod api_keys;
pub mod data_entries;
pub mod discovery;
pub mod events;
pub mod files;
pub mod idempotency;
mod metadata_filters;
pub mod metadata_index;
pub mod metadata_schemas;
pub mod physical_samples;
pub mod projects;
mod row;
pub mod secrets;
pub mod ui_sessions;
mod units;
pub mod users;
pub mod webhooks;

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// `(version, description, sql)` of each file in `migrations/`, in order (see `build.rs`).
const MIGRATIONS: &[(i64, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The schema's migrations, as `sqlx::migrate!` would embed them (same versions,
/// descriptions and checksums, so databases migrated before keep validating).
pub static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| Migrator {
    migrations: MIGRATIONS
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                sql.starts_with("-- no-transaction"),
            )
        })
        .collect(),
    ..Migrator::DEFAULT
});

/// Errors of the database layer, sorted by what the caller can do about them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached right now; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A statement ran longer than `statement_timeout` (or waited that long for a lock) and
    /// the database cancelled it; retrying later may work.
    #[error("database statement timed out: {0}")]
    TimedOut(#[source] sqlx::Error),
    /// A merged metadata document would break a limit (raised by `metadata_within_limits`).
    #[error("{message}")]
    MetadataLimit { code: &'static str, message: String },
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                DbError::Unavailable(error)
            }
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some("LC001") => DbError::MetadataLimit {
                    code: "too_many_keys",
                    message: db.message().to_owned(),
                },
                Some("LC002") => DbError::MetadataLimit {
                    code: "metadata_too_large",
                    message: db.message().to_owned(),
                },
                // admin_shutdown, cannot_connect_now, too_many_connections
                Some("57P01" | "57P03" | "53300") => DbError::Unavailable(error),
                // query_canceled: statement_timeout, or an operator's pg_cancel_backend
                Some("57014") => DbError::TimedOut(error),
                _ => DbError::Other(error),
            },
            _ => DbError::Other(error),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// `options` with `statement_timeout_ms` (0: no bound) as every session's
/// `statement_timeout`: the session default, which `RESET statement_timeout` returns to.
pub fn with_statement_timeout(
    options: PgConnectOptions,
    statement_timeout_ms: u64,
) -> PgConnectOptions {
    match statement_timeout_ms {
        0 => options,
        ms => options.options([("statement_timeout", ms)]),
    }
}

/// A pool that connects lazily, so the service starts (and answers 503) while the
/// database is down, and waits a bounded time for a connection.
///
/// No ping before handing out a connection: that is a second round trip on every
/// request. A connection that died (the database restarted) fails its next query
/// instead, that request gets a 503, and the pool replaces the connection.
pub fn pool(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// A pool of `connections` of its own on `pool`'s database, with its settings: for work that
/// must neither wait for the request pool's connections nor hold one.
pub fn pool_beside(pool: &PgPool, connections: u32) -> PgPool {
    self::pool(
        (*pool.connect_options()).clone(),
        connections,
        pool.options().get_acquire_timeout(),
    )
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await?;
    // A migration may rightly run longer than the service's statement_timeout.
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *connection)
        .await?;
    MIGRATOR.run(&mut *connection).await?;
    units::sync(&mut connection).await?;
    sqlx::query("RESET statement_timeout")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// How many migrations the database has successfully applied.
pub async fn applied_migrations(pool: &PgPool) -> DbResult<i64> {
    let applied = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?;
    Ok(applied)
}

/// Creates `name` on the server `maintenance` points at, unless it exists.
pub async fn create_database_if_missing(maintenance: PgConnectOptions, name: &str) -> DbResult<()> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect_with(&maintenance).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut connection)
            .await?;
    if !exists {
        // Identifiers cannot be bound; quote it as PostgreSQL's quote_ident would.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut connection)
            .await?;
    }
    connection.close().await?;
    Ok(())
}
