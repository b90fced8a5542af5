//! Test harness. With `TEST_DATABASE_URL` or `DATABASE_URL` set, tests use that server (its
//! role needs CREATEDB); otherwise one throwaway PostgreSQL cluster is started per test
//! binary from the machine's binaries. Each test gets its own database.

use std::path::Path;
use std::sync::OnceLock;

use labcat::auth::issue_key;
use labcat::config::Settings;
use labcat::db;
use labcat::domain::Scope;
use labcat::domain::metadata_query::IndexedPaths;
use labcat::embedded_postgres::{ClusterOptions, EmbeddedPostgres};
use labcat::startup::Application;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

const TEMP_PREFIX: &str = "labcat-test-pg-";

pub enum TestServer {
    Embedded(EmbeddedPostgres),
    External(Box<PgConnectOptions>),
}

impl TestServer {
    fn maintenance_options(&self) -> PgConnectOptions {
        match self {
            TestServer::Embedded(cluster) => cluster.connect_options("postgres"),
            TestServer::External(options) => (**options).clone(),
        }
    }
}

pub fn test_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let url = std::env::var("TEST_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .ok()
            .filter(|url| !url.is_empty());
        if let Some(url) = url {
            return TestServer::External(Box::new(
                url.parse().expect("the test database URL parses"),
            ));
        }
        sweep_stale_clusters();
        let root = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(std::env::temp_dir())
            .expect("a temporary directory")
            .keep();
        let cluster = EmbeddedPostgres::start(&ClusterOptions {
            root,
            ephemeral: true,
        })
        .expect("a throwaway PostgreSQL cluster starts (is PostgreSQL installed?)");
        TestServer::Embedded(cluster)
    })
}

/// Clusters of earlier runs shut down when their test process ended; remove their files.
/// Only old ones: a directory another test run made a moment ago has no `postmaster.pid`
/// until its initdb is done, and removing it then fails that run.
fn sweep_stale_clusters() {
    let stale = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(600))
    };
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_PREFIX));
        if ours && stale(&path) && !path.join("data/postmaster.pid").exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    /// A read+write key of `user_id`.
    pub api_key: String,
    pub user_id: String,
    pub client: reqwest::Client,
    /// What the app answers from an index (`search.indexed_paths`).
    pub indexed_paths: IndexedPaths,
}

/// labcat builds reqwest without a TLS provider of its own (it uses rustls on ring, as sqlx
/// does); a client needs one installed, as `labcat` itself installs it.
pub fn install_tls_provider() {
    labcat::install_tls_provider();
}

/// An HTTP client for the tests.
pub fn http_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::new()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app with settings adjusted by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let (pool, settings) = fresh_pool(customize).await;
    db::migrate(&pool).await.expect("migrations apply");
    spawn_app_on(pool, &settings).await
}

/// A pool on a fresh, empty database, as `labcat serve` opens its sessions, and the
/// settings (adjusted by `customize`) to serve it with.
pub async fn fresh_pool(customize: impl FnOnce(&mut Settings)) -> (PgPool, Settings) {
    let maintenance = test_server().maintenance_options();
    let database = format!("labcat_test_{}", Uuid::new_v4().simple());
    db::create_database_if_missing(maintenance.clone(), &database)
        .await
        .expect("the test database is created");
    let mut settings = Settings::defaults();
    settings.server.addr = "127.0.0.1:0".into();
    settings.server.workers = 1;
    customize(&mut settings);
    let pool = db::pool(
        db::with_statement_timeout(
            maintenance.database(&database),
            settings.database.statement_timeout_ms,
        ),
        settings.database.pool_size(),
        settings.database.acquire_timeout(),
    );
    (pool, settings)
}

/// Serves the app on an already migrated `pool`, with a read+write key for alice.
pub async fn spawn_app_on(pool: PgPool, settings: &Settings) -> TestApp {
    let indexed_paths = db::metadata_index::sync(&pool, &settings.search.indexed_paths().unwrap())
        .await
        .expect("the declared paths are indexed");
    let application =
        Application::build(settings, pool.clone(), indexed_paths.clone()).expect("the app builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());

    let user_id = "alice".to_owned();
    let (secret, _) = issue_key(&pool, &user_id, "test", &[Scope::Read, Scope::Write], None)
        .await
        .expect("a key is issued");
    TestApp {
        address,
        pool,
        api_key: secret.expose().to_owned(),
        user_id,
        client: http_client(),
        indexed_paths,
    }
}

impl TestApp {
    /// What the default key may reach, for calling the store directly.
    pub fn access(&self) -> labcat::domain::Access<'_> {
        labcat::domain::Access {
            user_id: &self.user_id,
            projects: None,
        }
    }

    /// Runs `sql` (with the default user's id as `$1`) with no statement timeout: seeding
    /// thousands of entries in one statement takes seconds, as the triggers index each row.
    pub async fn seed(&self, sql: &str) {
        let mut seeding = self.pool.begin().await.unwrap();
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *seeding)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&self.user_id)
            .execute(&mut *seeding)
            .await
            .unwrap();
        seeding.commit().await.unwrap();
    }

    /// A new key for `user` (created if new) with `scopes`.
    pub async fn key_for(&self, user: &str, scopes: &[Scope]) -> String {
        let (secret, _) = issue_key(&self.pool, user, "test", scopes, None)
            .await
            .expect("a key is issued");
        secret.expose().to_owned()
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.address, path))
    }

    /// A request authenticated with `key`.
    pub fn request_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).header("X-API-KEY", key)
    }

    /// A request authenticated with the default key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(&self.api_key, method, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn patch_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(Method::PATCH, path).json(body)
    }

    /// Creates an entry (defaults filled in) and returns it.
    pub async fn create_entry(&self, overrides: Value) -> Value {
        let mut body = json!({"raw_name": "sample.mp4", "char_source_type": "rheed_video"});
        merge_into(&mut body, overrides);
        let response = self
            .request(Method::POST, "/data_entries")
            .json(&body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::CREATED, "creating {body}");
        response.json().await.expect("a JSON entry")
    }

    /// Creates an entry and returns its id.
    pub async fn create_entry_id(&self, overrides: Value) -> String {
        id_of(&self.create_entry(overrides).await)
    }
}

pub fn id_of(entry: &Value) -> String {
    entry["data_id"]
        .as_str()
        .expect("the entry has a data_id")
        .to_owned()
}

fn merge_into(target: &mut Value, overrides: Value) {
    if let (Value::Object(target), Value::Object(overrides)) = (target, overrides) {
        target.extend(overrides);
    }
}

/// Sends and returns status and JSON body (Null if the body is not JSON).
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A fresh, migrated database on the test server, as a URL for a `labcat` process.
pub async fn fresh_database_url() -> String {
    let maintenance = test_server().maintenance_options();
    let database = format!("labcat_test_{}", Uuid::new_v4().simple());
    db::create_database_if_missing(maintenance.clone(), &database)
        .await
        .expect("the test database is created");
    let pool = db::pool(
        maintenance.database(&database),
        2,
        std::time::Duration::from_secs(5),
    );
    db::migrate(&pool).await.expect("migrations apply");
    pool.close().await;
    match test_server() {
        TestServer::Embedded(cluster) => cluster.url(&database),
        TestServer::External(_) => {
            let url = std::env::var("TEST_DATABASE_URL")
                .or_else(|_| std::env::var("DATABASE_URL"))
                .expect("an external server has a URL");
            let (base, query) = url.split_once('?').unwrap_or((&url, ""));
            let (server, _) = base.rsplit_once('/').expect("the URL names a database");
            if query.is_empty() {
                format!("{server}/{database}")
            } else {
                format!("{server}/{database}?{query}")
            }
        }
    }
}

/// The value of an unlabelled series in a Prometheus text exposition.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .expect("a number")
}
