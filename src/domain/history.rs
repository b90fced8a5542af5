use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// One effective change of a data entry: who, when, which request, and what changed
/// (`{"field": {"before", "after"}}`, metadata as a key-level diff).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRecord {
    pub data_id: Uuid,
    pub revision: i64,
    /// `create`, `update` or `delete`.
    pub operation: String,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub changed_at: DateTime<Utc>,
    #[serde(rename = "user_id")]
    pub actor_user_id: String,
    #[serde(rename = "key_id")]
    pub actor_key_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub changes: Value,
    /// The metadata schema the change was checked against (`{"char_source_type",
    /// "version"}`), `null` when none applied.
    pub schema: Option<Value>,
}
