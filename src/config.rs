//! Settings, layered: the compiled-in `config/default.toml` < the file named by
//! `LABCAT_CONFIG` < `LABCAT__SECTION__KEY` environment variables; `DATABASE_URL` overrides
//! `database.url`. Unknown keys and bad values fail start-up with a message naming them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::metadata_schema::SchemaLimits;
use crate::domain::{MetadataLimits, metadata_query};

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub limits: LimitSettings,
    pub search: SearchSettings,
    pub auth: AuthSettings,
    pub writes: WriteSettings,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub ui: UiSettings,
    pub log: LogSettings,
    pub events: EventSettings,
    pub webhooks: WebhookSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: String,
    pub workers: usize,
    pub max_body_bytes: usize,
    /// 0: no bound.
    pub request_timeout_ms: u64,
    pub shutdown_timeout_seconds: u64,
    /// Empty: none (see `routes::public_url`).
    pub public_base_url: String,
    pub trusted_proxies: Vec<String>,
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Option<Duration> {
        (self.request_timeout_ms > 0).then(|| Duration::from_millis(self.request_timeout_ms))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    #[serde(deserialize_with = "empty_as_none")]
    pub url: Option<SecretString>,
    pub data_dir: PathBuf,
    /// 0: sized for the machine, see `pool_size`.
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// 0: no bound.
    pub statement_timeout_ms: u64,
    /// Statements answering coalesced reads of single entries that may run at once (each on
    /// a connection of its own).
    pub entry_read_statements: u32,
}

impl DatabaseSettings {
    /// Connections in the main pool: `max_connections`, or when that is 0, twice the CPU
    /// cores plus two. More connections than PostgreSQL has cores to run them only queue
    /// inside PostgreSQL instead of in the pool, and lengthen every write's tail
    /// (bench/README.md).
    pub fn pool_size(&self) -> u32 {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        u32::try_from(2 * cores + 2).unwrap_or(u32::MAX)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub metadata: MetadataLimits,
    pub schema: SchemaLimits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSettings {
    /// Metadata paths, as written in filters, that search keeps an index for.
    pub indexed_paths: Vec<String>,
}

impl SearchSettings {
    /// The declared paths, parsed; a malformed one names the setting.
    pub fn indexed_paths(&self) -> anyhow::Result<Vec<Vec<String>>> {
        self.indexed_paths
            .iter()
            .map(|text| {
                metadata_query::parse_path("search.indexed_paths", text).map_err(|error| {
                    anyhow::anyhow!(
                        "invalid configuration: search.indexed_paths: {text:?}: {}",
                        error.message
                    )
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub key_cache_seconds: u64,
    /// Keys a user may hold that are neither revoked nor expired.
    pub max_active_keys_per_user: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Days events (and webhook delivery records) are kept; fractions allowed.
    pub retention_days: f64,
    pub keepalive_seconds: f64,
    pub sequence_interval_ms: u64,
}

impl EventSettings {
    pub fn retention(&self) -> Duration {
        Duration::from_secs_f64(self.retention_days * 86_400.0)
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs_f64(self.keepalive_seconds)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub retry_initial_seconds: f64,
    pub retry_for_hours: f64,
    pub attempt_timeout_seconds: f64,
    pub disable_after_failures: u32,
    pub allow_private_networks: bool,
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSettings {
    pub require_if_match: bool,
    pub bulk_max_items: usize,
    pub idempotency_ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub read_per_second: u32,
    pub read_burst: u32,
    pub write_per_second: u32,
    pub write_burst: u32,
    /// Per client address: failed authentications that may reach the database.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    pub max_age_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    /// How long a web UI session lasts after signing in (never longer than its key).
    pub session_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text
        .filter(|text| !text.trim().is_empty())
        .map(SecretString::from))
}

impl Settings {
    /// Reads the layers from the process environment.
    pub fn load() -> anyhow::Result<Self> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Ok(path) = std::env::var("LABCAT_CONFIG") {
            builder = builder.add_source(File::with_name(&path).required(true));
        }
        builder = builder
            .add_source(
                Environment::with_prefix("LABCAT")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("cors.allowed_origins")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("search.indexed_paths"),
            )
            .set_override_option("database.url", std::env::var("DATABASE_URL").ok())?;
        let mut settings: Settings = builder
            .build()
            .context("invalid configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        // `LABCAT__CORS__ALLOWED_ORIGINS=` (empty) means none, not one empty origin.
        settings
            .cors
            .allowed_origins
            .retain(|origin| !origin.trim().is_empty());
        settings
            .server
            .trusted_proxies
            .retain(|proxy| !proxy.trim().is_empty());
        settings
            .search
            .indexed_paths
            .retain(|path| !path.trim().is_empty());
        settings.validate()?;
        Ok(settings)
    }

    /// The defaults alone (tests start from these).
    pub fn defaults() -> Self {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("the compiled-in defaults are valid")
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.search.indexed_paths()?;
        let positive = [
            ("server.max_body_bytes", self.server.max_body_bytes),
            ("limits.metadata.max_bytes", self.limits.metadata.max_bytes),
            ("limits.metadata.max_keys", self.limits.metadata.max_keys),
            ("limits.metadata.max_depth", self.limits.metadata.max_depth),
            (
                "limits.metadata.max_key_length",
                self.limits.metadata.max_key_length,
            ),
            ("limits.schema.max_bytes", self.limits.schema.max_bytes),
            ("limits.schema.max_depth", self.limits.schema.max_depth),
            (
                "limits.schema.max_expanded_nodes",
                self.limits.schema.max_expanded_nodes,
            ),
            (
                "limits.schema.max_pattern_bytes",
                self.limits.schema.max_pattern_bytes,
            ),
            ("writes.bulk_max_items", self.writes.bulk_max_items),
            (
                "auth.max_active_keys_per_user",
                self.auth.max_active_keys_per_user as usize,
            ),
            (
                "database.entry_read_statements",
                self.database.entry_read_statements as usize,
            ),
        ];
        for (name, value) in positive {
            anyhow::ensure!(
                value > 0,
                "invalid configuration: {name} must be greater than 0"
            );
        }
        let positive_spans = [
            ("events.retention_days", self.events.retention_days),
            ("events.keepalive_seconds", self.events.keepalive_seconds),
            (
                "webhooks.retry_initial_seconds",
                self.webhooks.retry_initial_seconds,
            ),
            ("webhooks.retry_for_hours", self.webhooks.retry_for_hours),
            (
                "webhooks.attempt_timeout_seconds",
                self.webhooks.attempt_timeout_seconds,
            ),
        ];
        for (name, value) in positive_spans {
            // Also refuses NaN and infinity, which no Duration can be made from.
            anyhow::ensure!(
                value > 0.0 && value < 1e9,
                "invalid configuration: {name} must be a positive number of at most 1e9"
            );
        }
        anyhow::ensure!(
            self.events.sequence_interval_ms > 0 && self.webhooks.concurrency > 0,
            "invalid configuration: events.sequence_interval_ms and webhooks.concurrency must be \
             greater than 0"
        );
        anyhow::ensure!(
            self.auth.key_cache_seconds <= 5,
            "invalid configuration: auth.key_cache_seconds must be at most 5 (a revoked key \
             must stop working within 5 seconds on every instance)"
        );
        anyhow::ensure!(
            (1..=8760).contains(&self.ui.session_hours),
            "invalid configuration: ui.session_hours must be between 1 and 8760 (a year)"
        );
        self.validate_operations()
    }

    fn validate_operations(&self) -> anyhow::Result<()> {
        let rate = &self.rate_limit;
        let positive = [
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
            ),
            ("rate_limit.read_per_second", rate.read_per_second.into()),
            ("rate_limit.read_burst", rate.read_burst.into()),
            ("rate_limit.write_per_second", rate.write_per_second.into()),
            ("rate_limit.write_burst", rate.write_burst.into()),
            (
                "rate_limit.auth_failures_per_minute",
                rate.auth_failures_per_minute.into(),
            ),
            (
                "rate_limit.auth_failure_burst",
                rate.auth_failure_burst.into(),
            ),
        ];
        for (name, value) in positive {
            anyhow::ensure!(
                value > 0,
                "invalid configuration: {name} must be greater than 0"
            );
        }
        crate::routes::public_url::PublicUrls::new(
            &self.server.public_base_url,
            &self.server.trusted_proxies,
        )?;
        for origin in &self.cors.allowed_origins {
            if let Some(problem) = crate::cors::origin_problem(origin) {
                anyhow::bail!(
                    "invalid configuration: cors.allowed_origins entry '{origin}' {problem}"
                );
            }
        }
        Ok(())
    }

    /// Where the embedded cluster lives when no database URL is configured.
    pub fn embedded_data_dir(&self) -> PathBuf {
        if !self.database.data_dir.as_os_str().is_empty() {
            return self.database.data_dir.clone();
        }
        // PostgreSQL runs as `postgres` under root, and root's home is not reachable for it.
        if crate::embedded_postgres::is_root() {
            return PathBuf::from("/var/lib/labcat");
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
            })
            .unwrap_or_else(std::env::temp_dir)
            .join("labcat")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_0_sizes_the_pool_for_the_machine_and_a_number_wins() {
        let mut settings = Settings::defaults();
        assert_eq!(settings.database.max_connections, 0);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(settings.database.pool_size() as usize, 2 * cores + 2);
        settings.database.max_connections = 3;
        assert_eq!(settings.database.pool_size(), 3);
    }

    #[test]
    fn entry_reads_need_at_least_one_statement() {
        let mut settings = Settings::defaults();
        settings.database.entry_read_statements = 0;
        let error = settings.validate().unwrap_err().to_string();
        assert!(error.contains("database.entry_read_statements"), "{error}");
    }
}
