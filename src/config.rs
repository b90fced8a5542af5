//! Settings, layered: the compiled-in `config/default.toml` < the file named by
//! `LABCAT_CONFIG` < `LABCAT__SECTION__KEY` environment variables; `DATABASE_URL` overrides
//! `database.url`. Unknown keys and bad values fail start-up with a message naming them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::MetadataLimits;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: String,
    pub workers: usize,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    #[serde(deserialize_with = "empty_as_none")]
    pub url: Option<SecretString>,
    pub data_dir: PathBuf,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub metadata: MetadataLimits,
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
                    .try_parsing(true),
            )
            .set_override_option("database.url", std::env::var("DATABASE_URL").ok())?;
        let settings: Settings = builder
            .build()
            .context("invalid configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
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
        let positive = [
            ("server.max_body_bytes", self.server.max_body_bytes),
            (
                "database.max_connections",
                self.database.max_connections as usize,
            ),
            ("limits.metadata.max_bytes", self.limits.metadata.max_bytes),
            ("limits.metadata.max_keys", self.limits.metadata.max_keys),
            ("limits.metadata.max_depth", self.limits.metadata.max_depth),
            (
                "limits.metadata.max_key_length",
                self.limits.metadata.max_key_length,
            ),
        ];
        for (name, value) in positive {
            anyhow::ensure!(
                value > 0,
                "invalid configuration: {name} must be greater than 0"
            );
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
