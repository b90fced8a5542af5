//! Prometheus metrics. Each application holds its own registry (not a process-global
//! recorder), so the many apps a test process builds never share or double-register series.
//!
//! Series:
//! - `labcat_http_requests_total{method,route,status}`: counter
//! - `labcat_http_request_duration_seconds{method,route,status}`: histogram
//! - `labcat_db_pool_connections{state="in_use"|"idle"}`: gauge, read at scrape time
//! - `labcat_db_pool_max_connections`: gauge
//! - `labcat_auth_failures_total`: counter of 401s from key checks
//! - `labcat_rate_limited_requests_total{policy="read"|"write"|"auth_failure"}`: counter of
//!   429s (`auth_failure`: an address that failed authentication too often)
//! - `labcat_entry_read_batch_size`: histogram of reads answered per coalesced statement
//! - `labcat_schema_checked_writes_total{check="full"|"shortcut"}`: counter of entry updates
//!   stored under a metadata schema, by how their result was checked: in full, or known
//!   valid from the write and the stored document's recorded validity

use actix_web::http::Method;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sqlx::PgPool;

/// Request durations in seconds: fine below 100 ms, where most requests fall.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Reads per coalesced statement: 1 means no load to speak of; the reader takes at most 128.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max_connections: IntGauge,
    auth_failures: IntCounter,
    rate_limited: IntCounterVec,
    entry_read_batch_size: Histogram,
    schema_checked_writes: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let request_labels = &["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("labcat_http_requests_total", "HTTP requests answered"),
            request_labels,
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "labcat_http_request_duration_seconds",
                "Time from request to response",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            request_labels,
        )
        .expect("valid metric");
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "labcat_db_pool_connections",
                "Database connections of this instance's pool, by state",
            ),
            &["state"],
        )
        .expect("valid metric");
        let pool_max_connections = IntGauge::new(
            "labcat_db_pool_max_connections",
            "Most connections this instance's pool opens",
        )
        .expect("valid metric");
        let auth_failures = IntCounter::new(
            "labcat_auth_failures_total",
            "Requests refused for a missing, unknown, revoked or expired key",
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "labcat_rate_limited_requests_total",
                "Requests refused because a rate limit was reached",
            ),
            &["policy"],
        )
        .expect("valid metric");

        // Every series exists from the start, so a dashboard sees 0 rather than nothing.
        for policy in ["read", "write", crate::rate_limit::AUTH_FAILURE_POLICY] {
            rate_limited.with_label_values(&[policy]);
        }

        let entry_read_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "labcat_entry_read_batch_size",
                "Reads of single entries answered by one coalesced statement",
            )
            .buckets(BATCH_SIZE_BUCKETS.to_vec()),
        )
        .expect("valid metric");

        let schema_checked_writes = IntCounterVec::new(
            Opts::new(
                "labcat_schema_checked_writes_total",
                "Entry updates stored under a metadata schema, by how their result was checked",
            ),
            &["check"],
        )
        .expect("valid metric");
        for check in ["full", "shortcut"] {
            schema_checked_writes.with_label_values(&[check]);
        }

        let registry = Registry::new();
        registry
            .register(Box::new(requests.clone()))
            .and_then(|()| registry.register(Box::new(durations.clone())))
            .and_then(|()| registry.register(Box::new(pool_connections.clone())))
            .and_then(|()| registry.register(Box::new(pool_max_connections.clone())))
            .and_then(|()| registry.register(Box::new(auth_failures.clone())))
            .and_then(|()| registry.register(Box::new(rate_limited.clone())))
            .and_then(|()| registry.register(Box::new(entry_read_batch_size.clone())))
            .and_then(|()| registry.register(Box::new(schema_checked_writes.clone())))
            .expect("metric names are unique");
        Self {
            registry,
            requests,
            durations,
            pool_connections,
            pool_max_connections,
            auth_failures,
            rate_limited,
            entry_read_batch_size,
            schema_checked_writes,
        }
    }

    /// The counter of writes checked under a schema, by `check` (a handle to the same one).
    pub fn schema_checked_writes(&self) -> IntCounterVec {
        self.schema_checked_writes.clone()
    }

    /// The histogram the entry reader records its batch sizes in (a handle to the same one).
    pub fn entry_read_batch_size(&self) -> Histogram {
        self.entry_read_batch_size.clone()
    }

    /// `route` must be the matched pattern (`/data_entries/{data_id}`), never the raw path,
    /// so the number of series stays bounded.
    pub fn observe_request(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method_label(method), route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.durations.with_label_values(&labels).observe(seconds);
    }

    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    pub fn rate_limited(&self, policy: &str) {
        self.rate_limited.with_label_values(&[policy]).inc();
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &PgPool) -> String {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        self.pool_connections
            .with_label_values(&["in_use"])
            .set((size - idle).max(0));
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_max_connections
            .set(i64::from(pool.options().get_max_connections()));
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// Methods outside the standard set share one label, so a client cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
