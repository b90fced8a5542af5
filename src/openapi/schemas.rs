//! Schemas of the request and response bodies. Request bodies are parsed by hand from a
//! JSON object (`DataEntryPatch::from_json` and friends, for field-precise 422s), so these
//! doc-only types restate those rules; keep the two in step. Enum values come from the
//! domain's own `NAMES`, so they cannot drift.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::domain::{CharSourceType, DataEntry as StoredEntry, PipelineStatus, Role, Scope};

/// A string schema that admits exactly `values`.
fn string_enum(description: &str, values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
        .into()
}

macro_rules! enum_schema {
    ($type:ty, $name:literal, $description:literal, $values:expr) => {
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                string_enum($description, $values)
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

enum_schema!(
    CharSourceType,
    "CharSourceType",
    "What instrument or technique produced the raw data.",
    CharSourceType::NAMES
);
enum_schema!(
    PipelineStatus,
    "PipelineStatus",
    "Where the entry's processing pipeline is.",
    PipelineStatus::NAMES
);
enum_schema!(
    Scope,
    "Scope",
    "What an API key may do: `read` for GET, `write` for changes (and, like `read`, GET: a \
     key may read what it may write), `admin` for other users' keys.",
    Scope::NAMES
);

enum_schema!(
    Role,
    "Role",
    "A member's role in a project: `viewer` reads; `editor` also creates, changes and \
     deletes entries and samples; `admin` also manages members, renames and deletes it.",
    Role::NAMES
);

/// A member name of an entry response, as `?fields=` takes it (`_all`: every member).
pub struct EntryField;

impl PartialSchema for EntryField {
    fn schema() -> RefOr<Schema> {
        let mut names = StoredEntry::FIELDS.to_vec();
        names.extend(["_all", ""]);
        string_enum(
            "A member of a data entry (`_all`: every member; empty names are skipped).",
            &names,
        )
    }
}

impl ToSchema for EntryField {}

/// A data entry. Every member is present unless `?fields=` selected some of them.
#[derive(ToSchema)]
#[schema(examples(json!({
    "data_id": "0192b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "raw_name": "GaN_run_42.mp4",
    "char_source_type": "rheed_video",
    "pipeline_status": "pending",
    "physical_sample_id": null,
    "upload_datetime": "2024-01-15T10:30:00Z",
    "last_updated": "2024-01-15T10:30:00Z",
    "raw_size_gb": 1.5,
    "user_id": "user_abc123",
    "metadata": {"growth": {"temperature_c": 650}},
    "revision": 1,
    "version": "0.1.0"
})))]
pub struct DataEntry {
    /// Server-assigned.
    #[schema(required = false)]
    pub data_id: Uuid,
    #[schema(required = false, min_length = 1, max_length = 1024)]
    pub raw_name: String,
    #[schema(required = false)]
    pub char_source_type: CharSourceType,
    #[schema(required = false)]
    pub pipeline_status: PipelineStatus,
    #[schema(required = false)]
    pub physical_sample_id: Option<Uuid>,
    /// Set at creation.
    #[schema(required = false)]
    pub upload_datetime: DateTime<Utc>,
    /// Moves on every effective change, never on a no-op.
    #[schema(required = false)]
    pub last_updated: DateTime<Utc>,
    #[schema(required = false, minimum = 0.0)]
    pub raw_size_gb: Option<f64>,
    /// Who created the entry.
    #[schema(required = false)]
    pub user_id: String,
    /// The project the entry belongs to; its members' roles decide who may read or change it.
    #[schema(required = false)]
    pub project_id: Uuid,
    /// Free-form JSON object.
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
    /// +1 on every effective change; the ETag is this number in quotes.
    #[schema(required = false, minimum = 1)]
    pub revision: i64,
    /// Whether the metadata fits the project's schema for the entry's type, as last checked
    /// (`null`: no schema applies).
    #[schema(required = false)]
    pub metadata_valid: Option<bool>,
    /// How it does not fit (`[]` when it does; `null`: no schema applies).
    #[schema(required = false)]
    pub metadata_errors: Option<Vec<SchemaViolation>>,
    /// The server's version.
    #[schema(required = false)]
    pub version: String,
    /// Search rows only: the entry's project, as the Atomscale SDK reads it.
    #[schema(required = false)]
    pub projects: Vec<ProjectRef>,
}

/// A project named in a search row.
#[derive(ToSchema)]
pub struct ProjectRef {
    pub id: Uuid,
    pub name: String,
}

// Patterns: `^[^\u0000]*$` says "no NUL" (PostgreSQL text cannot hold one); the longer one
// adds "not blank" (something besides white space).

/// `POST /data_entries`. Unknown members and server-set ones (`data_id`, `revision`, ...)
/// are a 422.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "raw_name": "GaN_run_42.mp4",
    "char_source_type": "rheed_video",
    "metadata": {"growth": {"temperature_c": 650}}
})))]
pub struct NewDataEntry {
    #[schema(min_length = 1, max_length = 1024, pattern = r"^[^\u0000]*$")]
    pub raw_name: String,
    pub char_source_type: CharSourceType,
    /// Defaults to `pending`.
    #[schema(required = false)]
    pub pipeline_status: PipelineStatus,
    /// Must name a physical sample the caller owns (otherwise 422).
    pub physical_sample_id: Option<Uuid>,
    #[schema(minimum = 0.0)]
    pub raw_size_gb: Option<f64>,
    /// Free-form JSON object, `{}` by default. No NUL anywhere; by default at most 1000
    /// top-level keys, 32 levels, keys of 256 characters and 256 KiB in all.
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
    /// A project the caller is an editor or admin of; by default the caller's personal
    /// project (or the one project its key is limited to).
    #[schema(required = false)]
    pub project_id: Uuid,
}

/// `PATCH /data_entries/{data_id}`: every member optional; absent leaves a field alone,
/// `null` clears a nullable one. `{}` changes nothing.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"pipeline_status": "success", "metadata": {"operator": "kim", "obsolete_key": null}})))]
pub struct DataEntryPatch {
    #[schema(
        required = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000]*$"
    )]
    pub raw_name: String,
    #[schema(required = false)]
    pub char_source_type: CharSourceType,
    #[schema(required = false)]
    pub pipeline_status: PipelineStatus,
    /// A physical sample the caller owns (otherwise 422), or `null` to unlink.
    pub physical_sample_id: Option<Uuid>,
    #[schema(minimum = 0.0)]
    pub raw_size_gb: Option<f64>,
    /// An RFC 7396 merge patch for the metadata: objects merge deeply, `null` deletes a key,
    /// anything else replaces.
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
    /// Moves the entry to this project (editor or admin there too); recorded in its history.
    #[schema(required = false)]
    pub project_id: Uuid,
}

/// One item of a bulk `PATCH /data_entries`: the entry's id and a patch for it.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkPatchItem {
    pub data_id: Uuid,
    #[schema(
        required = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000]*$"
    )]
    pub raw_name: String,
    #[schema(required = false)]
    pub char_source_type: CharSourceType,
    #[schema(required = false)]
    pub pipeline_status: PipelineStatus,
    pub physical_sample_id: Option<Uuid>,
    #[schema(minimum = 0.0)]
    pub raw_size_gb: Option<f64>,
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
}

/// The outcome of one bulk item, in request order: `entry` on success, `problem` otherwise.
#[derive(ToSchema)]
pub struct BulkResult {
    /// The item's `data_id`, or `null` when it had no valid one.
    #[schema(required = true)]
    pub data_id: Option<Uuid>,
    /// The status the item would have had as a single request.
    pub status: u16,
    #[schema(required = false)]
    pub entry: DataEntry,
    #[schema(required = false)]
    pub problem: Problem,
}

/// An entry's metadata document (or, with `?fields=`, the selected keys of it).
#[derive(ToSchema)]
#[schema(value_type = Object, examples(json!({"growth": {"temperature_c": 650}, "operator": "kim"})))]
pub struct MetadataDocument(pub serde_json::Map<String, serde_json::Value>);

/// One effective change of an entry.
#[derive(ToSchema)]
pub struct HistoryRecord {
    pub data_id: Uuid,
    /// The revision the change produced.
    pub revision: i64,
    #[schema(inline)]
    pub operation: HistoryOperation,
    pub changed_at: DateTime<Utc>,
    /// Who made the change.
    pub user_id: String,
    /// With which key (`null` for changes made outside the API).
    #[schema(required = true)]
    pub key_id: Option<Uuid>,
    /// The `X-Request-Id` of the request that made it.
    #[schema(required = true)]
    pub request_id: Option<String>,
    /// `{"<field>": {"before": ..., "after": ...}}`; metadata as a key-level diff.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    /// The metadata schema the change was checked against; `null` when none applied.
    #[schema(required = true)]
    pub schema: Option<HistorySchema>,
}

/// The schema version a change was checked against.
#[derive(ToSchema)]
pub struct HistorySchema {
    /// The schema's data type, or `default`.
    pub char_source_type: String,
    pub version: i32,
}

/// One way metadata breaks a schema.
#[derive(ToSchema)]
pub struct SchemaViolation {
    /// JSON Pointer into the metadata (`""`: the document itself).
    pub path: String,
    pub message: String,
    /// The schema keyword that failed, e.g. `minimum`, `required`, `x-dimension`.
    pub keyword: String,
}

/// One event of the change feed (and the body of a webhook delivery).
#[derive(ToSchema)]
pub struct FeedEvent {
    /// The event's cursor: `after=<id>` continues right after it.
    #[schema(pattern = r"^[0-9]+$")]
    pub id: String,
    #[schema(inline)]
    pub r#type: EventTypeName,
    pub project_id: Uuid,
    /// Entry events.
    #[schema(required = false)]
    pub data_id: Uuid,
    /// Entry events: the entry's revision after the change (1 for a create; a delete's is
    /// one past the last).
    #[schema(required = false)]
    pub revision: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: EventActor,
    /// What changed, as in the entry's history (`{"field": {"before", "after"},
    /// "metadata": {"key": {"before", "after"}}}`); a membership change:
    /// `{"user_id", "role": {"before", "after"}}`; a new sample: its id and name.
    #[schema(required = false, value_type = Object)]
    pub changes: serde_json::Value,
}

#[derive(ToSchema)]
pub struct EventActor {
    pub user_id: String,
    pub key_id: Option<Uuid>,
}

#[derive(ToSchema)]
pub enum EventTypeName {
    #[schema(rename = "entry.created")]
    EntryCreated,
    #[schema(rename = "entry.updated")]
    EntryUpdated,
    #[schema(rename = "entry.deleted")]
    EntryDeleted,
    #[schema(rename = "entry.moved")]
    EntryMoved,
    #[schema(rename = "sample.created")]
    SampleCreated,
    #[schema(rename = "project.member_changed")]
    MemberChanged,
}

/// A webhook of a project.
#[derive(ToSchema)]
pub struct Webhook {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    #[schema(inline)]
    pub events: Vec<EventTypeName>,
    pub enabled: bool,
    /// Why labcat turned it off (it kept failing); `null` while enabled.
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row, since the last delivered one.
    pub consecutive_failures: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only in the answer to a create or a rotation, once: `whsec_` and base64, the
    /// Standard Webhooks form. Verify each delivery's `webhook-signature` with it.
    #[schema(required = false)]
    pub secret: String,
}

/// `POST /projects/{project_id}/webhooks`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://lims.example.org/labcat-hook",
                          "events": ["entry.updated", "entry.created"]}))]
pub struct WebhookCreate {
    /// `https` (or `http` with `webhooks.allow_private_networks`), not resolving to a
    /// loopback, private, link-local or metadata address.
    #[schema(max_length = 2048)]
    pub url: String,
    /// The event types it is sent.
    #[schema(inline, min_items = 1)]
    pub events: Vec<EventTypeName>,
    #[schema(required = false)]
    pub enabled: bool,
}

/// `PATCH /projects/{project_id}/webhooks/{webhook_id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    #[schema(required = false, max_length = 2048)]
    pub url: String,
    #[schema(inline, required = false, min_items = 1)]
    pub events: Vec<EventTypeName>,
    /// `true` turns a disabled webhook back on (and clears its failure count).
    #[schema(required = false)]
    pub enabled: bool,
    /// `true`: a new secret, shown once in the answer; the old one keeps signing alongside
    /// (a second signature in `webhook-signature`) for 24 hours.
    #[schema(required = false)]
    pub rotate_secret: bool,
}

/// One event's delivery to one webhook.
#[derive(ToSchema)]
pub struct WebhookDelivery {
    pub delivery_id: Uuid,
    /// The event's cursor in the feed; the body sent is the event as `GET /events` tells it.
    pub event_id: String,
    #[schema(inline)]
    pub event_type: EventTypeName,
    #[schema(required = false)]
    pub data_id: Uuid,
    /// `pending` (waiting or retrying), `delivered`, or `failed` (given up after
    /// `webhooks.retry_for_hours`).
    pub status: String,
    pub attempts: i32,
    /// The receiver's status code at the last attempt (`null`: no answer).
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A version of a project's metadata schema for one data type.
#[derive(ToSchema)]
pub struct MetadataSchema {
    pub project_id: Uuid,
    /// A `char_source_type`, or `default`.
    pub char_source_type: String,
    /// 1 for the first PUT, +1 for each later one.
    pub version: i32,
    #[schema(inline)]
    pub mode: SchemaModeName,
    /// The JSON Schema.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Earlier versions only: when a later PUT or a DELETE replaced it.
    #[schema(required = false)]
    pub retired_at: DateTime<Utc>,
    /// PUT answers only: how many stored entries are being rechecked in the background.
    #[schema(required = false)]
    pub rechecking: i64,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaModeName {
    Enforce,
    Report,
}

/// `PUT /projects/{project_id}/schemas/{char_source_type}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "mode": "enforce",
    "schema": {
        "type": "object",
        "required": ["temperature"],
        "properties": {"temperature": {"x-dimension": "temperature"}}
    }
})))]
pub struct MetadataSchemaChange {
    #[schema(inline)]
    pub mode: SchemaModeName,
    /// A JSON Schema: an object or a boolean.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// `POST /projects/{project_id}/schemas/{char_source_type}/check`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataSchemaTrial {
    /// The candidate JSON Schema.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// Accepted and ignored: a dry run lists every violation either way.
    #[schema(inline, required = false)]
    pub mode: SchemaModeName,
}

/// What a candidate schema would say of the stored entries.
#[derive(ToSchema)]
pub struct MetadataSchemaDryRun {
    /// Entries the candidate would be for.
    pub checked: i64,
    /// How many of them would fail it.
    pub failing: i64,
    /// The first 20 failing entries, by `data_id`.
    pub first_failing: Vec<FailingEntry>,
}

#[derive(ToSchema)]
pub struct FailingEntry {
    pub data_id: Uuid,
    pub errors: Vec<SchemaViolation>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HistoryOperation {
    Create,
    Update,
    Delete,
}

/// A physical sample that data entries can point at.
#[derive(ToSchema)]
pub struct PhysicalSample {
    /// The same as `physical_sample_id` (the Atomscale SDK reads `id`).
    pub id: Uuid,
    pub physical_sample_id: Uuid,
    pub name: String,
    pub user_id: String,
    pub project_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// `POST /physical_samples`. A name the caller already used (ignoring case and surrounding
/// space) is a 409.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPhysicalSample {
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: String,
    /// By default the caller's personal project (or the one project its key is limited to).
    #[schema(required = false)]
    pub project_id: Uuid,
}

/// A project as one caller sees it. `id` repeats `project_id` and `owner_name`,
/// `last_updated` and `physical_sample_count` are there for the Atomscale SDK.
#[derive(ToSchema)]
pub struct Project {
    pub project_id: Uuid,
    pub id: Uuid,
    pub name: String,
    /// From the name at creation (Seven Bridges' short name); the `/v2` id is
    /// `created_by/slug`.
    pub slug: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub created_by: String,
    pub owner_name: String,
    /// Each user's own, made with the user: where entries go when no project is named.
    pub personal: bool,
    /// The caller's role.
    pub role: Role,
    pub physical_sample_count: i64,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
}

/// `POST /projects` (`name` required) and `PATCH /projects/{project_id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChange {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: String,
    /// `null` clears it.
    #[schema(required = false, max_length = 4096)]
    pub description: Option<String>,
}

/// A member of a project.
#[derive(ToSchema)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
}

/// `PUT /projects/{project_id}/members/{user_id}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    pub role: Role,
}

/// An API key as lists show it: never the secret.
#[derive(ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    /// The public part of the secret, safe to log.
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[schema(inline)]
    pub status: ApiKeyStatus,
    /// The projects the key is limited to; `null`: every project of its user.
    #[schema(required = true)]
    pub projects: Option<Vec<Uuid>>,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Revoked,
}

/// `POST /api_keys`. The new key's scopes cannot exceed the caller's; `user_id` other than
/// the caller's own needs `admin`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "pipeline", "scopes": ["read", "write"], "expires_at": "2030-01-01T00:00:00Z"})))]
pub struct NewApiKey {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: String,
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Must be in the future, and no later than the expiry of the key making this one
    /// (422 `expires_after_parent`); `null` or absent: the key expires with the key making
    /// it, or never if that one never does.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whose key (default: the caller's). Created if new.
    #[schema(pattern = r"^[A-Za-z0-9_.@-]{1,128}$")]
    pub user_id: Option<String>,
    /// Limits the key to these projects (1 to 100, each one the caller reaches; within the
    /// making key's own limit, 422 `projects_beyond_parent`). Absent or `null`: the making
    /// key's limit, if any.
    #[schema(min_items = 1, max_items = 100)]
    pub projects: Option<Vec<Uuid>>,
}

/// A new key, with its secret: shown this once, never again.
#[derive(ToSchema)]
pub struct CreatedApiKey {
    pub id: Uuid,
    /// The secret: `lc_` and 40 letters and digits.
    #[schema(pattern = r"^lc_[A-Za-z0-9]{40}$")]
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub projects: Option<Vec<Uuid>>,
}

/// RFC 9457 problem details, plus a stable machine `code`, per-field `errors` and the
/// request's id.
#[derive(ToSchema)]
#[schema(examples(json!({
    "type": "urn:labcat:problem:invalid_enum_value",
    "title": "Unprocessable content",
    "status": 422,
    "detail": "'done' is not a valid 'pipeline_status'; allowed values: success, pending, error, running",
    "code": "invalid_enum_value",
    "errors": [{
        "field": "pipeline_status",
        "message": "'done' is not a valid 'pipeline_status'; allowed values: success, pending, error, running",
        "allowed_values": ["success", "pending", "error", "running"]
    }],
    "request_id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
})))]
pub struct Problem {
    /// `urn:labcat:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    #[schema(inline)]
    pub detail: ProblemDetail,
    /// Stable machine code: `unauthorized`, `not_found`, `invalid_enum_value`,
    /// `unknown_field`, `precondition_failed`, `payload_too_large`, `rate_limited`, ...
    pub code: String,
    /// What is wrong with which field (for 400 and 422).
    #[schema(required = false)]
    pub errors: Vec<ProblemFieldError>,
    /// The `X-Request-Id` of the request, to find it in the server's log.
    #[schema(required = false)]
    pub request_id: String,
}

/// A human-readable explanation; for a duplicate physical sample, an object naming the
/// existing one.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ProblemDetail {
    Text(String),
    DuplicateSample {
        message: String,
        physical_sample_id: Uuid,
    },
}

/// One thing wrong with one field of a request.
#[derive(ToSchema)]
pub struct ProblemFieldError {
    /// The member or parameter, e.g. `pipeline_status`, `metadata.key` or `[2].raw_name`.
    pub field: String,
    pub message: String,
    /// For enum fields, the values that would have been accepted.
    #[schema(required = false)]
    pub allowed_values: Vec<String>,
    /// For a metadata schema violation (`code` `schema_violation`): the JSON Pointer into
    /// the metadata.
    #[schema(required = false)]
    pub path: String,
    /// For a metadata schema violation: the schema keyword that failed.
    #[schema(required = false)]
    pub keyword: String,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    #[schema(inline)]
    pub status: HealthStatus,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Readiness {
    #[schema(inline)]
    pub status: ReadyStatus,
    /// Migrations applied to the database.
    pub migrations: i64,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    Ready,
}

/// A metadata path of `GET /metadata/keys`: how many of the caller's readable entries hold
/// a value there, of which types, and for quantities in which units.
#[derive(ToSchema)]
#[schema(examples(json!({
    "path": "growth.temperature",
    "count": 12,
    "types": {"number": 3, "quantity": 9},
    "units": {"degC": 7, "K": 2}
})))]
pub struct MetadataKey {
    /// As filters take it: keys joined by `.`, with `.`, `[`, `]` and `\` inside a key
    /// escaped by a backslash.
    pub path: String,
    /// Entries with a value at the path.
    #[schema(minimum = 1)]
    pub count: i64,
    #[schema(inline)]
    pub types: KeyTypes,
    /// Entries holding a quantity in each unit (as written); only when some entry holds a
    /// quantity at the path.
    #[schema(required = false)]
    pub units: std::collections::BTreeMap<String, i64>,
}

/// Entries holding each type of value at a path (an entry counts once per type, however
/// many array elements of it it holds); types no entry holds there are left out.
#[derive(ToSchema)]
pub struct KeyTypes {
    #[schema(required = false, minimum = 1)]
    pub string: i64,
    #[schema(required = false, minimum = 1)]
    pub number: i64,
    /// `{"value": <number>, "unit": <string>}`, listed as one key (not its members).
    #[schema(required = false, minimum = 1)]
    pub quantity: i64,
    #[schema(required = false, minimum = 1)]
    pub boolean: i64,
    #[schema(required = false, minimum = 1)]
    pub null: i64,
    /// An empty object (a non-empty one is listed by its members' paths).
    #[schema(required = false, minimum = 1)]
    pub object: i64,
    /// An empty array (the elements of a non-empty one are listed at the array's path).
    #[schema(required = false, minimum = 1)]
    pub array: i64,
}

/// `GET /data_entries/facets`: an object with a member per facet asked for.
pub struct FacetCounts;

impl PartialSchema for FacetCounts {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .description(Some(
                "For each facet asked for (named as asked), in request order, its most \
                 frequent values: at most 50, ties by value.",
            ))
            .additional_properties(Some(
                ArrayBuilder::new().items(Ref::from_schema_name(FacetValue::name())),
            ))
            .examples([serde_json::json!({
                "char_source_type": [{"value": "xps", "count": 12}, {"value": "sem", "count": 3}],
                "metadata.operator": [{"value": "alice", "count": 3}]
            })])
            .into()
    }
}

impl ToSchema for FacetCounts {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((FacetValue::name().into(), FacetValue::schema()));
    }
}

/// One value of a facet: a column's value, or a JSON value found at the metadata path (an
/// array's elements one by one, objects as they are), and how many entries hold it.
#[derive(ToSchema)]
pub struct FacetValue {
    pub value: serde_json::Value,
    #[schema(minimum = 1)]
    pub count: i64,
}
