//! Parameters several operations share. The handlers read them from the raw query string
//! and headers (to report every problem precisely), so these types only describe them.

use utoipa::IntoParams;
use uuid::Uuid;

use super::schemas::EntryField;
use crate::domain::{CharSourceType, PipelineStatus, search};

/// `?fields=` on routes that return entries.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryFields {
    /// Only these members of each entry, comma-separated (`_all` or empty: every member).
    /// An unknown name is a 400.
    #[param(style = Form, explode = false)]
    pub fields: Option<Vec<EntryField>>,
}

/// `?fields=` on the metadata routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetadataKeys {
    /// Only these top-level keys of the metadata, comma-separated (`_all` or empty: all).
    #[param(style = Form, explode = false)]
    pub fields: Option<Vec<String>>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    /// Apply the write only if the entry's ETag is one of these (`*`: any). A stale one is
    /// a 412 carrying the current ETag.
    #[param(rename = "If-Match", required = false)]
    pub if_match: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatch {
    /// A 304 without a body when the entry's ETag is one of these.
    #[param(rename = "If-None-Match", required = false)]
    pub if_none_match: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Makes a retry safe: the same key with the same request replays the first response
    /// (with `Idempotency-Replayed: true`) instead of writing again; with a different
    /// request it is a 422 (on `/v2` a 400), and while the first is still running a 409.
    /// Keys belong to the API key that sent them (another key, even the same user's, never
    /// gets the answer) and are kept for 24 hours (`writes.idempotency_ttl_seconds`).
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
    )]
    pub idempotency_key: String,
}

/// The filters of `GET /data_entries`, the Atomscale SDK's search parameters; facets take
/// them too.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchFilters {
    /// Only these entries (repeat the parameter, or separate ids with commas). `data_id`
    /// works as well.
    #[param(style = Form, explode = true)]
    pub data_ids: Option<Vec<Uuid>>,
    /// Only entries linked to these samples (repeatable, comma-separated). Also
    /// `physical_sample_id`.
    #[param(style = Form, explode = true)]
    pub physical_sample_ids: Option<Vec<Uuid>>,
    /// Space-separated words; each must appear (ignoring case) in the name, type or status.
    #[param(pattern = r"^[^\u0000]*$")]
    pub keywords: Option<String>,
    /// Full text: space-separated words (at most 32); each must appear, ignoring case and
    /// as written (no stemming), in the name or in some string value of the metadata.
    #[param(pattern = r"^[^\u0000]*$")]
    pub q: Option<String>,
    /// One `char_source_type`; `all` or empty: any. The SDK's other names work too
    /// (`tool_state`: metrology; `rheed`, `rheed_stationary`, `rheed_rotating`:
    /// rheed_video; `pl`: photoluminescence), and types labcat never stores (`rheed_image`,
    /// `recipe`) find nothing.
    #[param(schema_with = data_type_schema)]
    pub data_type: Option<String>,
    /// One `pipeline_status`; `all` or empty: any. The SDK's streaming statuses find
    /// nothing.
    #[param(schema_with = status_schema)]
    pub status: Option<String>,
    /// What the project's metadata schema for the entry's type says of its metadata:
    /// `false` finds the entries a `report` schema flagged, `null` those no schema applies to.
    #[param(schema_with = metadata_valid_schema)]
    pub metadata_valid: Option<String>,
    /// Uploaded at or after: RFC 3339, `YYYY-MM-DD HH:MM:SS[.f][±HH:MM]` or `YYYY-MM-DD`
    /// (no offset: UTC).
    pub upload_datetime_min: Option<String>,
    /// Uploaded at or before (formats as for `upload_datetime_min`).
    pub upload_datetime_max: Option<String>,
    /// Last changed at or after (formats as for `upload_datetime_min`). Also
    /// `last_accessed_datetime_min`.
    pub last_updated_min: Option<String>,
    /// Last changed at or before. Also `last_accessed_datetime_max`.
    pub last_updated_max: Option<String>,
    /// Accepted for the Atomscale SDK and ignored (as are `project_ids` and
    /// `growth_length_min|max`).
    pub include_organization_data: Option<String>,
}

/// Paging, ordering and the members of each entry, for `GET /data_entries`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchPaging {
    /// Most entries in one page.
    #[param(minimum = 1, maximum = 10000, default = 1000)]
    pub limit: Option<i64>,
    /// Where the next page starts: copy it from the `Link: rel="next"` URL.
    pub cursor: Option<String>,
    /// `upload_datetime`, `last_updated` or `metadata.<path>`, `-` for descending; ties are
    /// broken by `data_id`. By a metadata path: numbers and quantities (in SI) first, then
    /// strings (byte order), then other values, then entries without the path, in either
    /// direction.
    #[param(schema_with = order_by_schema)]
    pub order_by: Option<String>,
    /// Only these members of each entry, comma-separated.
    #[param(style = Form, explode = false)]
    pub fields: Option<Vec<EntryField>>,
}

/// `GET /metadata/keys`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeysParams {
    /// Only entries of these projects (of those the caller may read; repeatable,
    /// comma-separated). Also `project_ids`.
    #[param(style = Form, explode = true)]
    pub project_id: Option<Vec<Uuid>>,
    /// Only entries of this type.
    pub char_source_type: Option<CharSourceType>,
    /// Only paths whose written form (as in the answer) starts with this, e.g.
    /// `instrument.` or `instrument.sett`.
    #[param(pattern = r"^[^\u0000]*$")]
    pub prefix: Option<String>,
}

/// `GET /data_entries/facets`: what to count; every filter of `GET /data_entries` selects
/// the entries counted.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FacetParams {
    /// What to count, repeatable: `char_source_type`, `pipeline_status`, `project_id`,
    /// `physical_sample_id`, or `metadata.<path>` (the path as filters write it). 1 to 10
    /// distinct ones (a repeated one counts once, so no `maxItems` here); anything else is a
    /// 400 naming `facet`.
    #[param(style = Form, explode = true, min_items = 1)]
    pub facet: Vec<String>,
}

fn string_enum(values: &[&str]) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn with_any(names: &[&'static str], extra: &[&'static str]) -> Vec<&'static str> {
    let mut values = vec!["all", ""];
    values.extend_from_slice(names);
    values.extend_from_slice(extra);
    values
}

/// The Atomscale SDK's other names for types (`CharSourceType::from_search_alias`).
const DATA_TYPE_ALIASES: &[&str] = &[
    "tool_state",
    "rheed",
    "rheed_stationary",
    "rheed_rotating",
    "pl",
];

fn data_type_values() -> Vec<&'static str> {
    let mut values = with_any(CharSourceType::NAMES, DATA_TYPE_ALIASES);
    values.extend_from_slice(search::SDK_ONLY_TYPES);
    values
}

fn status_values() -> Vec<&'static str> {
    with_any(PipelineStatus::NAMES, search::SDK_ONLY_STATUSES)
}

fn data_type_schema() -> utoipa::openapi::schema::Object {
    string_enum(&data_type_values())
}

fn status_schema() -> utoipa::openapi::schema::Object {
    string_enum(&status_values())
}

fn metadata_valid_schema() -> utoipa::openapi::schema::Object {
    string_enum(&["true", "false", "null"])
}

fn order_by_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(r"^-?(upload_datetime|last_updated|metadata\..+)$"))
        .examples(["-upload_datetime", "-metadata.temperature"])
        .build()
}

/// `GET /data_entries/{data_id}/history`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Most changes in one page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
    /// Where the next page starts: copy it from the `Link: rel="next"` URL.
    pub cursor: Option<String>,
}

/// `GET /events`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The `id` of the last event read: the page (or stream) starts right after it.
    #[param(pattern = r"^[0-9]{1,18}$")]
    pub after: Option<String>,
    /// Only this project's events.
    pub project_id: Option<Uuid>,
    /// Only these event types, comma-separated (`entry.created`, `entry.updated`,
    /// `entry.deleted`, `entry.moved`, `sample.created`, `project.member_changed`).
    #[param(
        pattern = r"^(entry\.(created|updated|deleted|moved)|sample\.created|project\.member_changed)(,(entry\.(created|updated|deleted|moved)|sample\.created|project\.member_changed))*$"
    )]
    pub r#type: Option<String>,
    /// Most events in one page.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
}

/// `GET /physical_samples`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SampleFilter {
    /// Only this sample (also `physical_sample_ids`, `id`).
    pub physical_sample_id: Option<Uuid>,
    /// Only samples with exactly this name.
    #[param(pattern = r"^[^\u0000]*$")]
    pub name: Option<String>,
}

/// `GET /api_keys`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyOwner {
    /// Whose keys (default: the caller's); someone else's needs `admin`.
    #[param(pattern = r"^[A-Za-z0-9_.@-]{1,128}$")]
    pub user_id: Option<String>,
}

/// `PATCH /data_entries` (bulk).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BulkParams {
    /// `true` (or `1`): all items or none. Otherwise each item stands alone and the
    /// response reports each one's outcome.
    pub atomic: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SearchQuery;
    use crate::domain::search::CursorKey;

    const KEY: CursorKey = CursorKey([0; 32]);

    #[test]
    fn every_documented_data_type_and_status_is_accepted_by_search() {
        for value in data_type_values() {
            assert!(
                SearchQuery::parse([("data_type", value)], &KEY).is_ok(),
                "{value}"
            );
        }
        for value in status_values() {
            assert!(
                SearchQuery::parse([("status", value)], &KEY).is_ok(),
                "{value}"
            );
        }
    }
}
