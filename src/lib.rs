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
