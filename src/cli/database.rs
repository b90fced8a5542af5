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
        let pool = db::pool(
            options,
            settings.database.max_connections,
            settings.database.acquire_timeout(),
        );
        let database = Self { pool, embedded };
        if let Err(error) = db::migrate(&database.pool).await {
            database.close().await;
            return Err(error.context("cannot reach the database to apply migrations"));
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
