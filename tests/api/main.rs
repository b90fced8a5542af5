//! One integration-test binary (faster to link): every test spawns the real application on
//! port 0 against a fresh database and talks HTTP to it.

mod auth;
mod bad_input;
mod concurrency;
mod data_entries;
mod health;
mod helpers;
mod metadata;
mod patch;
mod physical_samples;
mod search;
mod v2;
