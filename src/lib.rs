//! labcat: a metadata service for laboratory data catalogues.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod embedded_postgres;
pub mod error;
pub mod routes;
pub mod startup;
pub mod telemetry;
