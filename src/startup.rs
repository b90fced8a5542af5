//! Builds the HTTP application, for `labcat serve` and for the tests alike.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;

use crate::auth::KeyUsage;
use crate::config::Settings;
use crate::domain::MetadataLimits;
use crate::{routes, telemetry};

/// How often one key's `last_used_at` is written, at most.
const KEY_USAGE_INTERVAL: Duration = Duration::from_secs(60);

/// Everything a handler needs besides the request.
pub struct AppState {
    pub pool: PgPool,
    pub metadata_limits: MetadataLimits,
    pub max_body_bytes: usize,
    pub key_usage: KeyUsage,
}

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `settings.server.addr` (port 0 picks a free port) and builds the server.
    pub fn build(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.server.addr)
            .with_context(|| format!("cannot listen on {}", settings.server.addr))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            key_usage: KeyUsage::new(pool.clone(), KEY_USAGE_INTERVAL),
            pool,
            metadata_limits: settings.limits.metadata,
            max_body_bytes: settings.server.max_body_bytes,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(telemetry::request_context))
                .configure(routes::configure)
        })
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until SIGINT/SIGTERM, then stops accepting and finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
