//! The catalogue's operations on data entries, shared by the native API and the
//! Seven Bridges-compatible `/v2` surface: rules that need the database (ownership,
//! preconditions, history) live here once, and each API only maps shapes.

pub mod entries;
pub mod entry_reader;
pub mod feed;
pub mod projects;
pub mod schemas;
pub mod webhook_dispatch;
pub mod webhooks;
