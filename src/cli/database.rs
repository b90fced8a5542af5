//! The database a command works on: the configured server, or the embedded cluster
//! (started for the command, or attached to if `labcat serve` already runs it).

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::config::Settings;
use crate::db;
use crate::embedded_postgres::{ClusterOptions, EmbeddedPostgres};

const EMBEDDED_DATABASE: &str = "labcat";

pub struct Database {
    pub pool: PgPool,
    pub embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects (starting the embedded cluster if needed) and applies migrations.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (options, embedded) = match &settings.database.url {
            Some(url) => {
                let options: PgConnectOptions = url
                    .expose_secret()
                    .parse()
                    .context("invalid configuration: database.url is not a PostgreSQL URL")?;
                (options, None)
            }
            None => {
                let cluster_options = ClusterOptions {
                    root: settings.embedded_data_dir(),
                    ephemeral: false,
                };
                let cluster =
                    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&cluster_options))
                        .await?
                        .context("cannot start the embedded PostgreSQL")?;
                db::create_database_if_missing(
                    cluster.connect_options("postgres"),
                    EMBEDDED_DATABASE,
                )
                .await
                .context("cannot create the embedded database")?;
                (cluster.connect_options(EMBEDDED_DATABASE), Some(cluster))
            }
        };
        let options = db::with_statement_timeout(options, settings.database.statement_timeout_ms);
        let pool = db::pool(
            options.clone(),
            settings.database.pool_size(),
            settings.database.acquire_timeout(),
        );
        let database = Self { pool, embedded };
        if let Err(error) = db::migrate(&database.pool).await {
            database.close().await;
            return Err(explain_failed_start(error, &options, settings).await);
        }
        Ok(database)
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(cluster) = self.embedded {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// One line on why start-up could not migrate: the pool only says it timed out, so one
/// direct connection attempt finds the real cause (refused, unknown host, bad password).
async fn explain_failed_start(
    error: anyhow::Error,
    options: &PgConnectOptions,
    settings: &Settings,
) -> anyhow::Error {
    let target = describe(options);
    let timeout = settings.database.acquire_timeout();
    let attempt = tokio::time::timeout(
        timeout,
        <sqlx::PgConnection as sqlx::Connection>::connect_with(options),
    )
    .await;
    match attempt {
        Ok(Ok(_)) => error.context(format!("cannot apply migrations to the database {target}")),
        Ok(Err(cause)) => anyhow::anyhow!("cannot connect to the database {target}: {cause}"),
        Err(_) => anyhow::anyhow!(
            "cannot connect to the database {target}: no answer within {} ms \
             (database.acquire_timeout_ms)",
            timeout.as_millis()
        ),
    }
}

/// Where the options point, without credentials: `host:port/database`.
fn describe(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or("(default)");
    match options.get_socket() {
        Some(socket) => format!("at {}/{database}", socket.display()),
        None => format!(
            "at {}:{}/{database}",
            options.get_host(),
            options.get_port()
        ),
    }
}
