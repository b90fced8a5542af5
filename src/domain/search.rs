//! `GET /data_entries`: the Atomscale SDK's search parameters plus metadata filters,
//! paging (`limit`, keyset `cursor`) and ordering.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::metadata_query::{
    Condition, check_dimensions, operator_name, parse_condition, parse_path, split_operator,
};
use super::query_limits::{MAX_IDS, MAX_KEYWORDS, MAX_METADATA_FILTERS, MAX_PARAMETERS, too_many};
use super::{CharSourceType, FieldError, PipelineStatus, timestamp};

pub const DEFAULT_LIMIT: i64 = 1000;
pub const MAX_LIMIT: i64 = 10_000;

/// What results are ordered by; `data_id` breaks ties so the order is total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    UploadDatetime,
    LastUpdated,
    /// `order_by=metadata.<path>`: numbers and quantities (in SI) first, then strings, then
    /// other values, then entries without the path (last in either direction).
    Metadata(Vec<String>),
}

/// An entry's place in `order_by=metadata.<path>`, as the database computes it
/// (`metadata_sort_key`): rank (0 number or quantity, 1 string, 2 other, 3 absent), then
/// the number, then the string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataPosition(pub i16, pub f64, pub String);

/// The sort value of the row a page ended on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SortValue {
    Time(DateTime<Utc>),
    Metadata(MetadataPosition),
}

/// Where the previous page ended: the sort value and id of its last row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "k")]
    pub key: SortKey,
    #[serde(rename = "d")]
    pub descending: bool,
    #[serde(rename = "v")]
    pub after_value: SortValue,
    #[serde(rename = "i")]
    pub after_id: Uuid,
}

/// The server secret cursors are signed with, shared by every instance on one database
/// (`db::secrets`), so a cursor made by one is accepted by all and a forged one by none.
#[derive(Clone)]
pub struct CursorKey(pub [u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(payload.as_bytes());
        mac
    }
}

impl Cursor {
    /// `<payload>.<HMAC-SHA256 of the payload>`, both base64url.
    pub fn encode(&self, key: &CursorKey) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(key.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    fn decode(text: &str, key: &CursorKey) -> Option<Self> {
        let (payload, tag) = text.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        key.mac(payload).verify_slice(&tag).ok()?;
        let cursor: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let fits = match (&cursor.key, &cursor.after_value) {
            (SortKey::Metadata(_), SortValue::Metadata(_)) => true,
            (SortKey::Metadata(_), SortValue::Time(_)) | (_, SortValue::Metadata(_)) => false,
            (_, SortValue::Time(time)) => timestamp::storable(time),
        };
        fits.then_some(cursor)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub data_ids: Vec<Uuid>,
    pub physical_sample_ids: Vec<Uuid>,
    /// Only entries of these projects (of those the caller may read).
    pub project_ids: Vec<Uuid>,
    /// Each keyword must appear (case-insensitively) in the name, type or status.
    pub keywords: Vec<String>,
    /// `q=`: each word must appear (case-insensitively) in the name or a metadata string.
    pub words: Vec<String>,
    pub data_type: Option<CharSourceType>,
    pub status: Option<PipelineStatus>,
    /// The SDK asked for a type or status labcat never stores: the answer is empty.
    pub matches_nothing: bool,
    /// `metadata_valid=true|false|null`: what the metadata schema said of the entry
    /// (`null`: no schema applies).
    pub metadata_valid: Option<Option<bool>>,
    pub upload_min: Option<DateTime<Utc>>,
    pub upload_max: Option<DateTime<Utc>>,
    pub updated_min: Option<DateTime<Utc>>,
    pub updated_max: Option<DateTime<Utc>>,
    /// `metadata.<path>=<value>`: the value at the path, as text, equals the value.
    pub metadata: Vec<(Vec<String>, String)>,
    /// `metadata.<path>[<op>]=<value>`.
    pub metadata_conditions: Vec<(Vec<String>, Condition)>,
    pub limit: i64,
    pub sort: SortKey,
    pub descending: bool,
    pub cursor: Option<Cursor>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        Self {
            data_ids: Vec::new(),
            physical_sample_ids: Vec::new(),
            project_ids: Vec::new(),
            keywords: Vec::new(),
            words: Vec::new(),
            data_type: None,
            status: None,
            matches_nothing: false,
            metadata_valid: None,
            upload_min: None,
            upload_max: None,
            updated_min: None,
            updated_max: None,
            metadata: Vec::new(),
            metadata_conditions: Vec::new(),
            limit: DEFAULT_LIMIT,
            sort: SortKey::UploadDatetime,
            descending: false,
            cursor: None,
        }
    }
}

/// Data types and statuses the Atomscale SDK knows but labcat has no entries of: asking
/// for them is not an error, it just finds nothing.
pub const SDK_ONLY_TYPES: &[&str] = &["rheed_image", "recipe"];
pub const SDK_ONLY_STATUSES: &[&str] = &[
    "stream_active",
    "stream_interrupted",
    "stream_finalizing",
    "stream_error",
];

/// Parameters the SDK sends that labcat has nothing to filter on yet.
const ACCEPTED_AND_IGNORED: &[&str] = &[
    "include_organization_data",
    "growth_length_min",
    "growth_length_max",
    "fields",
];

impl SearchQuery {
    /// Parses decoded query pairs; repeated keys accumulate.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        cursor_key: &CursorKey,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        let mut errors = Vec::new();
        let mut cursor_text = None;
        for (count, (name, value)) in pairs.into_iter().enumerate() {
            if count == MAX_PARAMETERS {
                return Err(vec![too_many("query parameters", MAX_PARAMETERS)]);
            }
            if let Err(error) = query.apply(name, value, &mut cursor_text) {
                errors.push(error);
            }
        }
        for (parameter, count, limit) in [
            (
                "metadata",
                query.metadata.len() + query.metadata_conditions.len(),
                MAX_METADATA_FILTERS,
            ),
            ("keywords", query.keywords.len(), MAX_KEYWORDS),
            ("q", query.words.len(), MAX_KEYWORDS),
            ("data_ids", query.data_ids.len(), MAX_IDS),
            (
                "physical_sample_ids",
                query.physical_sample_ids.len(),
                MAX_IDS,
            ),
            ("project_ids", query.project_ids.len(), MAX_IDS),
        ] {
            if count > limit {
                errors.insert(0, too_many(parameter, limit));
            }
        }
        if let Some(text) = cursor_text {
            match Cursor::decode(text, cursor_key) {
                Some(cursor)
                    if cursor.key == query.sort && cursor.descending == query.descending =>
                {
                    query.cursor = Some(cursor)
                }
                Some(_) => errors.push(FieldError::invalid_value(
                    "cursor",
                    "this cursor belongs to a different 'order_by'",
                )),
                None => errors.push(FieldError::invalid_value(
                    "cursor",
                    "'cursor' is not a cursor this server issued",
                )),
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    fn apply<'a>(
        &mut self,
        name: &str,
        value: &'a str,
        cursor_text: &mut Option<&'a str>,
    ) -> Result<(), FieldError> {
        if let Some(rest) = name.strip_prefix("metadata.") {
            let (path, bracketed) = split_operator(rest);
            let op = bracketed
                .map(|bracketed| operator_name(name, bracketed))
                .transpose()?;
            let path = parse_path(name, path)?;
            match op {
                None if value.contains('\0') => {
                    return Err(FieldError::invalid_value(
                        name,
                        "a metadata filter contains no NUL",
                    ));
                }
                None => self.metadata.push((path, value.to_owned())),
                Some(op) => {
                    let condition = parse_condition(name, op, value)?;
                    let on_this_path = self
                        .metadata_conditions
                        .iter()
                        .filter(|(other, _)| *other == path)
                        .flat_map(|(_, other)| other.dimensions());
                    check_dimensions(name, on_this_path.chain(condition.dimensions()))?;
                    self.metadata_conditions.push((path, condition));
                }
            }
            return Ok(());
        }
        match name {
            "data_ids" | "data_id" => self.data_ids.extend(parse_uuids(name, value)?),
            "physical_sample_ids" | "physical_sample_id" => {
                self.physical_sample_ids.extend(parse_uuids(name, value)?)
            }
            "project_ids" | "project_id" => self.project_ids.extend(parse_uuids(name, value)?),
            "q" if value.contains('\0') => {
                return Err(FieldError::invalid_value(name, "'q' contains a NUL"));
            }
            "q" => {
                // A word is matched by its letters and digits (`GaN_buffer` by "gan" and
                // "buffer"); one with none would match everything or nothing.
                if let Some(word) = value
                    .split_whitespace()
                    .find(|word| !word.chars().any(char::is_alphanumeric))
                {
                    return Err(FieldError::invalid_value(
                        name,
                        format!("'q': the word '{word}' has no letter or digit to look for"),
                    ));
                }
                self.words
                    .extend(value.split_whitespace().map(str::to_owned))
            }
            "keywords" => {
                if value.contains('\0') {
                    return Err(FieldError::invalid_value(name, "keywords contain a NUL"));
                }
                self.keywords
                    .extend(value.split_whitespace().map(str::to_owned))
            }
            "data_type" if SDK_ONLY_TYPES.contains(&value) => self.matches_nothing = true,
            "status" if SDK_ONLY_STATUSES.contains(&value) => self.matches_nothing = true,
            "data_type" => {
                self.data_type = match value {
                    "all" | "" => None,
                    other => Some(
                        CharSourceType::from_search_alias(other)
                            .ok_or_else(|| enum_error(name, other, CharSourceType::NAMES))?,
                    ),
                }
            }
            "status" => {
                self.status = match value {
                    "all" | "" => None,
                    other => Some(
                        other
                            .parse()
                            .map_err(|()| enum_error(name, other, PipelineStatus::NAMES))?,
                    ),
                }
            }
            "metadata_valid" => {
                self.metadata_valid = Some(match value {
                    "true" => Some(true),
                    "false" => Some(false),
                    "null" => None,
                    _ => {
                        return Err(FieldError {
                            allowed_values: Some(vec!["true", "false", "null"]),
                            ..FieldError::invalid_value(
                                name,
                                "'metadata_valid' must be true, false or null (no schema \
                                 applies)",
                            )
                        });
                    }
                })
            }
            "upload_datetime_min" => self.upload_min = Some(parse_time(name, value)?),
            "upload_datetime_max" => self.upload_max = Some(parse_time(name, value)?),
            // Older SDKs send last_accessed_datetime_*; they mean the same column.
            "last_updated_min" | "last_accessed_datetime_min" => {
                self.updated_min = Some(parse_time(name, value)?)
            }
            "last_updated_max" | "last_accessed_datetime_max" => {
                self.updated_max = Some(parse_time(name, value)?)
            }
            "limit" => {
                self.limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        FieldError::invalid_value(
                            name,
                            format!("'limit' must be an integer from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "cursor" => *cursor_text = Some(value),
            "order_by" => {
                let (descending, column) = match value.strip_prefix('-') {
                    Some(column) => (true, column),
                    None => (false, value),
                };
                self.descending = descending;
                self.sort = match column {
                    "upload_datetime" => SortKey::UploadDatetime,
                    "last_updated" => SortKey::LastUpdated,
                    _ if column.starts_with("metadata.") => {
                        let path = &column["metadata.".len()..];
                        SortKey::Metadata(parse_path(name, path)?)
                    }
                    _ => {
                        return Err(FieldError {
                            allowed_values: Some(vec![
                                "upload_datetime",
                                "-upload_datetime",
                                "last_updated",
                                "-last_updated",
                                "metadata.<path>",
                                "-metadata.<path>",
                            ]),
                            ..FieldError::new(
                                name,
                                "invalid_enum_value",
                                format!("cannot order by '{value}'"),
                            )
                        });
                    }
                }
            }
            _ if ACCEPTED_AND_IGNORED.contains(&name) => {}
            _ => {
                return Err(FieldError::new(
                    name,
                    "unknown_parameter",
                    format!("unknown query parameter '{name}'"),
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn parse_uuids(name: &str, value: &str) -> Result<Vec<Uuid>, FieldError> {
    value
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            Uuid::parse_str(part.trim()).map_err(|_| {
                FieldError::invalid_value(name, format!("'{part}' in '{name}' is not a UUID"))
            })
        })
        .collect()
}

fn parse_time(name: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    timestamp::parse(value).ok_or_else(|| {
        FieldError::invalid_value(
            name,
            format!("'{name}' must be RFC 3339 or 'YYYY-MM-DD HH:MM:SS'"),
        )
    })
}

fn enum_error(name: &str, value: &str, allowed: &'static [&'static str]) -> FieldError {
    FieldError {
        allowed_values: Some(allowed.to_vec()),
        ..FieldError::new(
            name,
            "invalid_enum_value",
            format!(
                "'{value}' is not a valid '{name}'; allowed values: all, {}",
                allowed.join(", ")
            ),
        )
    }
}

/// The JSON values a `metadata.<key>=<value>` filter matches: the value as a string, and
/// also as the number, boolean or null it spells. Each becomes one containment (`@>`)
/// test, which the GIN index on `metadata` answers.
pub fn metadata_filter_documents(key: &str, value: &str) -> Vec<serde_json::Value> {
    scalar_candidates(value)
        .into_iter()
        .map(|candidate| serde_json::json!({ key: candidate }))
        .collect()
}

/// The same for the value at a nested path: each candidate nested under the path's keys,
/// and, since containment finds an element of a nested array only inside an array, each
/// also as a one-element array (a filter matches an array holding the value).
pub fn metadata_path_documents(path: &[String], value: &str) -> Vec<serde_json::Value> {
    let nest = |leaf: serde_json::Value| {
        path.iter()
            .rev()
            .fold(leaf, |inner, key| serde_json::json!({ key: inner }))
    };
    let mut documents = Vec::new();
    for candidate in scalar_candidates(value) {
        documents.push(nest(serde_json::Value::Array(vec![candidate.clone()])));
        documents.push(nest(candidate));
    }
    documents
}

/// A filter value as the JSON scalars it may stand for: always the string, and the number,
/// boolean or null it reads as.
fn scalar_candidates(value: &str) -> Vec<serde_json::Value> {
    use serde_json::Value;
    let mut candidates = vec![Value::String(value.to_owned())];
    match value {
        "true" => candidates.push(Value::Bool(true)),
        "false" => candidates.push(Value::Bool(false)),
        "null" => candidates.push(Value::Null),
        _ => {
            if let Ok(number @ Value::Number(_)) = serde_json::from_str::<Value>(value) {
                candidates.push(number);
            }
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: CursorKey = CursorKey([7; 32]);

    #[test]
    fn parses_what_the_atomscale_sdk_sends() {
        let query = SearchQuery::parse(
            [
                ("keywords", "GaN"),
                ("include_organization_data", "True"),
                ("data_type", "tool_state"),
                ("status", "all"),
                ("upload_datetime_min", "2025-01-01 00:00:00"),
            ],
            &KEY,
        )
        .unwrap();
        assert_eq!(query.keywords, vec!["GaN"]);
        assert_eq!(query.data_type, Some(CharSourceType::Metrology));
        assert_eq!(query.status, None);
        assert!(query.upload_min.is_some());
        assert!(!query.matches_nothing);
        let query =
            SearchQuery::parse([("data_type", "recipe"), ("status", "stream_active")], &KEY);
        assert!(query.unwrap().matches_nothing);
    }

    #[test]
    fn repeated_ids_accumulate_and_bad_ones_are_named() {
        let a = "11111111-1111-1111-1111-111111111111";
        let b = "22222222-2222-2222-2222-222222222222";
        let query = SearchQuery::parse([("data_ids", a), ("data_ids", b)], &KEY).unwrap();
        assert_eq!(query.data_ids.len(), 2);
        let errors = SearchQuery::parse([("data_ids", "nope")], &KEY).unwrap_err();
        assert_eq!(errors[0].field, "data_ids");
    }

    #[test]
    fn cursors_round_trip_and_must_match_the_order() {
        let cursor = Cursor {
            key: SortKey::UploadDatetime,
            descending: false,
            after_value: SortValue::Time(Utc::now()),
            after_id: Uuid::new_v4(),
        };
        let encoded = cursor.encode(&KEY);
        let query = SearchQuery::parse([("cursor", encoded.as_str())], &KEY).unwrap();
        assert_eq!(query.cursor, Some(cursor));
        assert!(
            SearchQuery::parse(
                [("cursor", encoded.as_str()), ("order_by", "-last_updated")],
                &KEY
            )
            .is_err()
        );
        assert!(SearchQuery::parse([("cursor", "garbage")], &KEY).is_err());
        let other_key = CursorKey([8; 32]);
        assert!(SearchQuery::parse([("cursor", encoded.as_str())], &other_key).is_err());
        let (payload, tag) = encoded.split_once('.').unwrap();
        let tampered = format!("{}A.{tag}", payload);
        assert!(SearchQuery::parse([("cursor", tampered.as_str())], &KEY).is_err());
    }
}
