//! API keys: how secrets look and are hashed, and who a request is.

pub mod api_key;
pub mod issue;
pub mod key_cache;
pub mod key_usage;
pub mod principal;
pub mod session;

pub use api_key::{ApiKeySecret, KeyHash};
pub use issue::{IssueError, issue_key, issue_key_within};
pub use key_cache::KeyCache;
pub use key_usage::KeyUsage;
pub use principal::Principal;
