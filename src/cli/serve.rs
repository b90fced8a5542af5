//! `labcat serve`.

use super::database::Database;
use crate::auth::issue_key;
use crate::config::Settings;
use crate::db;
use crate::domain::Scope;
use crate::startup::Application;

const FIRST_ADMIN_USER: &str = "admin";

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let result = serve(&settings, &database).await;
    database.close().await;
    result
}

async fn serve(settings: &Settings, database: &Database) -> anyhow::Result<()> {
    // On a fresh embedded database nobody could log in; make the first key and show it
    // once, the way Jupyter prints its token. A configured database gets nothing printed.
    let first_key =
        if database.embedded.is_some() && db::api_keys::count(&database.pool).await? == 0 {
            let scopes = [Scope::Read, Scope::Write, Scope::Admin];
            let (secret, _) = issue_key(
                &database.pool,
                FIRST_ADMIN_USER,
                "first admin key",
                &scopes,
                None,
            )
            .await?;
            Some(secret)
        } else {
            None
        };
    let indexed_paths =
        db::metadata_index::sync(&database.pool, &settings.search.indexed_paths()?).await?;
    let application = Application::build(settings, database.pool.clone(), indexed_paths)?;
    let host = settings
        .server
        .addr
        .rsplit_once(':')
        .map_or("127.0.0.1", |(host, _)| host);
    let host = if host == "0.0.0.0" || host == "[::]" {
        "127.0.0.1"
    } else {
        host
    };
    let base = format!("http://{host}:{}", application.port());
    println!("labcat {} listening on {base}", env!("CARGO_PKG_VERSION"));
    if let Some(cluster) = &database.embedded {
        println!(
            "database: embedded PostgreSQL in {}",
            cluster.root().display()
        );
    }
    if let Some(secret) = first_key {
        println!();
        println!(
            "An admin API key was created for user '{FIRST_ADMIN_USER}'. It is shown only this once:"
        );
        println!();
        println!("    {}", secret.expose());
        println!();
        println!("Try it:");
        println!(
            "    curl -H 'X-API-KEY: {}' {base}/data_entries",
            secret.expose()
        );
        println!();
    }
    application.run_until_signalled().await?;
    // actix has stopped accepting and finished (or, past server.shutdown_timeout_seconds,
    // dropped) the requests in flight; the caller closes the pool next.
    tracing::info!("stopped serving; closing the database pool");
    Ok(())
}
