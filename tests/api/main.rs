//! One integration-test binary (faster to link): every test spawns the real application on
//! port 0 against a fresh database and talks HTTP to it.

mod access;
mod api_keys;
mod auth;
mod bad_input;
mod bulk;
mod concurrency;
mod conditional;
mod data_entries;
mod discovery;
mod events;
mod health;
mod helpers;
mod history;
mod idempotency;
mod metadata;
mod metadata_query;
mod multi_instance;
mod openapi;
mod operations;
mod outage;
mod patch;
mod physical_samples;
mod process;
mod projects;
mod public_urls;
mod schemas;
mod search;
mod ui;
mod upgrade;
mod v2;
mod v2_projects;
mod webhooks;
