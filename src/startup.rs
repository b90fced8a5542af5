//! Builds the HTTP application, for `labcat serve` and for the tests alike.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;

use crate::auth::{KeyCache, KeyUsage};
use crate::catalog::entry_reader::EntryReader;
use crate::catalog::feed::{Feed, FeedSettings};
use crate::catalog::schemas::SchemaCache;
use crate::catalog::webhook_dispatch::Dispatcher;
use crate::catalog::webhooks::{SecretSeal, Webhooks};
use crate::config::Settings;
use crate::domain::MetadataLimits;
use crate::domain::metadata_query::IndexedPaths;
use crate::domain::search::CursorKey;
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::routes::public_url::PublicUrls;
use crate::shutdown::{self, InFlight};
use crate::{cors, rate_limit, request_timeout, routes, telemetry};

/// How often one key's `last_used_at` is written, at most.
const KEY_USAGE_INTERVAL: Duration = Duration::from_secs(60);
/// Connections of the background work (the feed's sequencer and hub, webhook delivery,
/// pruning), besides `database.max_connections`: it never waits for a request's connection,
/// and a request never waits for a connection it holds across its round trips.
const BACKGROUND_CONNECTIONS: u32 = 2;

/// Everything a handler needs besides the request.
pub struct AppState {
    pub pool: PgPool,
    /// Coalesces concurrent reads of single entries.
    pub entry_reader: EntryReader,
    pub metadata_limits: MetadataLimits,
    /// Compiled metadata schemas, and the limits a new one must keep.
    pub schemas: SchemaCache,
    /// The metadata paths search answers from an index.
    pub indexed_paths: IndexedPaths,
    pub max_body_bytes: usize,
    pub key_usage: KeyUsage,
    pub key_cache: KeyCache,
    /// Writes without If-Match are refused (428).
    pub require_if_match: bool,
    pub bulk_max_items: usize,
    pub idempotency_ttl: Duration,
    /// Active keys one user may hold (`POST /api_keys`).
    pub max_active_keys_per_user: u32,
    pub metrics: Metrics,
    /// `None` when rate limiting is off.
    pub rate_limits: Option<Arc<RateLimits>>,
    pub request_timeout: Option<Duration>,
    /// Signs search cursors; read from the database on first use (`cursor_key`).
    cursor_key: tokio::sync::OnceCell<CursorKey>,
    /// The root of absolute URLs in responses.
    pub public_urls: PublicUrls,
    /// How long a web UI session lasts (`ui.session_hours`).
    pub ui_session: Duration,
    /// The change feed, live.
    pub feed: Arc<Feed>,
    /// How often a live feed sends a keep-alive comment.
    pub feed_keepalive: Duration,
    /// Seals webhook secrets; read from the database on first use (`webhooks`).
    webhook_seal: tokio::sync::OnceCell<SecretSeal>,
    pub allow_private_networks: bool,
}

impl AppState {
    /// The cursor signing key every instance on this database shares.
    pub async fn cursor_key(&self) -> Result<&CursorKey, crate::db::DbError> {
        self.cursor_key
            .get_or_try_init(|| async {
                let secret =
                    crate::db::secrets::shared(&self.pool, "cursor", rand::random()).await?;
                Ok(CursorKey(secret))
            })
            .await
    }

    /// The webhook use cases, with the key that seals their secrets.
    pub async fn webhooks(&self) -> Result<Webhooks<'_>, crate::db::DbError> {
        let seal = self
            .webhook_seal
            .get_or_try_init(|| SecretSeal::load(&self.pool))
            .await?;
        Ok(Webhooks {
            pool: &self.pool,
            seal,
            allow_private_networks: self.allow_private_networks,
        })
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// Its live subscriptions end first at shutdown: they would hold the server open.
    feed: Arc<Feed>,
    /// Stops with the application (when this is dropped).
    dispatcher: Dispatcher,
    /// Stops with the application (when this is dropped).
    maintenance: Maintenance,
    /// The background work's connections, closed when it has stopped.
    background: PgPool,
    in_flight: web::Data<InFlight>,
    shutdown_timeout: Duration,
}

impl Application {
    /// Binds `settings.server.addr` (port 0 picks a free port) and builds the server.
    /// `indexed_paths` comes from `db::metadata_index::sync` on `pool`'s database.
    pub fn build(
        settings: &Settings,
        pool: PgPool,
        indexed_paths: IndexedPaths,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.server.addr)
            .with_context(|| format!("cannot listen on {}", settings.server.addr))?;
        let port = listener.local_addr()?.port();
        let public_urls = PublicUrls::new(
            &settings.server.public_base_url,
            &settings.server.trusted_proxies,
        )?;
        let metrics = Metrics::new();
        let entry_reader = EntryReader::start(
            &pool,
            settings.database.entry_read_statements,
            metrics.entry_read_batch_size(),
        );
        let background = crate::db::pool_beside(&pool, BACKGROUND_CONNECTIONS);
        let maintenance = Maintenance::start(
            background.clone(),
            Duration::from_secs(settings.writes.idempotency_ttl_seconds),
            settings.events.retention(),
        );
        let dispatcher = Dispatcher::start(background.clone(), settings.webhooks.clone())?;
        let feed = Arc::new(Feed::start(
            pool.clone(),
            background.clone(),
            FeedSettings {
                sequence_interval: Duration::from_millis(settings.events.sequence_interval_ms),
                // A subscription notices a revoked key as soon as a request would.
                recheck: Duration::from_secs(settings.auth.key_cache_seconds.max(1)),
            },
        ));
        let rate_limits = RateLimits::from_settings(&settings.rate_limit).map(Arc::new);
        if let Some(limits) = &rate_limits {
            rate_limit::spawn_eviction(limits);
        }
        let state = web::Data::new(AppState {
            key_usage: KeyUsage::new(pool.clone(), KEY_USAGE_INTERVAL),
            key_cache: KeyCache::new(Duration::from_secs(settings.auth.key_cache_seconds)),
            entry_reader,
            pool,
            metadata_limits: settings.limits.metadata,
            schemas: SchemaCache::new(settings.limits.schema, metrics.schema_checked_writes()),
            indexed_paths,
            max_body_bytes: settings.server.max_body_bytes,
            require_if_match: settings.writes.require_if_match,
            bulk_max_items: settings.writes.bulk_max_items,
            idempotency_ttl: Duration::from_secs(settings.writes.idempotency_ttl_seconds),
            max_active_keys_per_user: settings.auth.max_active_keys_per_user,
            metrics,
            rate_limits,
            request_timeout: settings.server.request_timeout(),
            cursor_key: tokio::sync::OnceCell::new(),
            public_urls,
            ui_session: Duration::from_secs(settings.ui.session_hours.saturating_mul(3600)),
            feed: feed.clone(),
            feed_keepalive: settings.events.keepalive(),
            webhook_seal: tokio::sync::OnceCell::new(),
            allow_private_networks: settings.webhooks.allow_private_networks,
        });
        let cors_settings = settings.cors.clone();
        let in_flight = web::Data::new(InFlight::default());
        let counted = in_flight.clone();
        let mut server = HttpServer::new(move || {
            // The last `wrap` runs first.
            App::new()
                .app_data(state.clone())
                .app_data(counted.clone())
                // Inside CORS and the time limit: replays and refusals get CORS headers,
                // and the claim's statements are bounded like the handlers'.
                .wrap(from_fn(routes::idempotency::middleware))
                .wrap(from_fn(request_timeout::limit))
                .wrap(cors::middleware(&cors_settings))
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(rate_limit::headers))
                .wrap(from_fn(telemetry::request_context))
                .wrap(from_fn(shutdown::count_in_flight))
                .configure(routes::configure)
        })
        // Signals are handled by `run_until_signalled` (see `shutdown` for why).
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            feed,
            dispatcher,
            maintenance,
            background,
            in_flight,
            shutdown_timeout: Duration::from_secs(settings.server.shutdown_timeout_seconds),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs until the process ends (tests) or the server is stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let _maintenance = self.maintenance; // stopped when the server has stopped
        let _dispatcher = self.dispatcher;
        self.server.await
    }

    /// Runs until SIGTERM or SIGINT, then stops accepting, lets the requests in flight
    /// finish, and returns.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let signal = shutdown::signalled().await?;
        self.feed.close();
        tracing::info!(
            signal,
            in_flight = self.in_flight.count(),
            "shutting down: no new connections; finishing the requests in flight"
        );
        shutdown::drain(&handle, &self.in_flight, self.shutdown_timeout).await;
        let stopped = server.await.map_err(std::io::Error::other)?;
        drop((self.maintenance, self.dispatcher));
        self.background.close().await;
        stopped
    }
}
