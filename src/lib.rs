//! labcat: a metadata service for laboratory data catalogues.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod cors;
pub mod db;
pub mod domain;
pub mod embedded_postgres;
pub mod error;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_timeout;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod telemetry;

/// Makes rustls on ring the process's TLS provider (reqwest, for webhooks, is built without
/// one of its own, so no second crypto library is compiled). Idempotent.
pub fn install_tls_provider() {
    // An error means one is installed already: as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
