//! Data entries: the stored row, what a create may contain, and what a PATCH may change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{CharSourceType, FieldError, MetadataLimits, MetadataPatch, Patch, PipelineStatus};

pub const MAX_RAW_NAME_CHARS: usize = 1024;

/// A data entry as stored, and (with `version`) as every entry route returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataEntry {
    pub data_id: Uuid,
    pub raw_name: String,
    pub char_source_type: CharSourceType,
    pub pipeline_status: PipelineStatus,
    pub physical_sample_id: Option<Uuid>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub upload_datetime: DateTime<Utc>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub last_updated: DateTime<Utc>,
    pub raw_size_gb: Option<f64>,
    pub user_id: String,
    /// The project the entry belongs to; who may reach it follows from there.
    pub project_id: Uuid,
    pub metadata: Value,
    pub revision: i64,
    /// Whether the metadata fits the project's schema for the entry's type, as last
    /// checked; `None` when no schema applies.
    pub metadata_valid: Option<bool>,
    /// How it does not fit (`[{"path", "message", "keyword"}]`); `None` when no schema
    /// applies.
    pub metadata_errors: Option<Value>,
    /// Shown only by the `/v2` files; the native entry has no tags member (yet).
    #[serde(skip)]
    pub tags: Vec<String>,
}

impl DataEntry {
    /// Every member of an entry response, in order; `?fields=` must name these.
    pub const FIELDS: &'static [&'static str] = &[
        "data_id",
        "raw_name",
        "char_source_type",
        "pipeline_status",
        "physical_sample_id",
        "upload_datetime",
        "last_updated",
        "raw_size_gb",
        "user_id",
        "project_id",
        "metadata",
        "revision",
        "metadata_valid",
        "metadata_errors",
        "version",
    ];

    /// The entry as JSON, with the server's version as the Atomscale response carries it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or_default()
    }

    /// The response body, serialisable without building a JSON tree first.
    pub fn body(&self) -> EntryBody<'_> {
        EntryBody {
            entry: self,
            version: env!("CARGO_PKG_VERSION"),
            projects: None,
        }
    }

    /// The body of a search row: with `projects`, the entry's project as the Atomscale SDK
    /// reads it (`[{"id", "name"}]`).
    pub fn search_row<'a>(&'a self, project_name: &'a str) -> EntryBody<'a> {
        EntryBody {
            projects: Some([ProjectRef {
                id: self.project_id,
                name: project_name,
            }]),
            ..self.body()
        }
    }

    /// Strong validator: the revision moves on every effective change and on nothing else.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.revision)
    }
}

/// An entry as every native route returns it: the row plus the server's `version`.
#[derive(Serialize)]
pub struct EntryBody<'a> {
    #[serde(flatten)]
    entry: &'a DataEntry,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    projects: Option<[ProjectRef<'a>; 1]>,
}

#[derive(Serialize)]
pub struct ProjectRef<'a> {
    id: Uuid,
    name: &'a str,
}

/// Fields the server sets; a body that names one is told so rather than "unknown field".
const READ_ONLY_FIELDS: &[&str] = &[
    "data_id",
    "upload_datetime",
    "last_updated",
    "user_id",
    "revision",
    "version",
];
const WRITABLE_FIELDS: &[&str] = &[
    "raw_name",
    "char_source_type",
    "pipeline_status",
    "physical_sample_id",
    "raw_size_gb",
    "metadata",
    "project_id",
];

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewDataEntry {
    pub raw_name: String,
    pub char_source_type: CharSourceType,
    pub pipeline_status: PipelineStatus,
    pub physical_sample_id: Option<Uuid>,
    pub raw_size_gb: Option<f64>,
    pub metadata: MetadataPatch,
    /// Where the entry goes; the caller's default project when `None`.
    pub project_id: Option<Uuid>,
}

impl NewDataEntry {
    pub fn from_json(
        body: Map<String, Value>,
        limits: &MetadataLimits,
    ) -> Result<Self, Vec<FieldError>> {
        let patch = DataEntryPatch::from_json(body, limits)?;
        let mut errors = Vec::new();
        let raw_name = required(patch.raw_name, "raw_name", &mut errors);
        let char_source_type = required(patch.char_source_type, "char_source_type", &mut errors);
        if let (Some(raw_name), Some(char_source_type)) = (raw_name, char_source_type)
            && errors.is_empty()
        {
            return Ok(Self {
                raw_name,
                char_source_type,
                pipeline_status: patch.pipeline_status.unwrap_or_default(),
                physical_sample_id: patch.physical_sample_id.into_column().1,
                raw_size_gb: patch.raw_size_gb.into_column().1,
                project_id: patch.project_id,
                metadata: patch.metadata.unwrap_or_else(|| {
                    MetadataPatch::parse("metadata", Value::Object(Map::new()), limits)
                        .expect("an empty object is within every limit")
                }),
            });
        }
        Err(errors)
    }
}

fn required<T>(value: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if value.is_none() {
        errors.push(FieldError::required(field));
    }
    value
}

/// A validated PATCH body: every field optional; `null` clears nullable fields.
#[derive(Debug, Clone, Default)]
pub struct DataEntryPatch {
    pub raw_name: Option<String>,
    pub char_source_type: Option<CharSourceType>,
    pub pipeline_status: Option<PipelineStatus>,
    pub physical_sample_id: Patch<Uuid>,
    pub raw_size_gb: Patch<f64>,
    /// An RFC 7396 merge patch for the metadata document.
    pub metadata: Option<MetadataPatch>,
    /// Replaces the tags (set by the `/v2` routes; the native body has no `tags`).
    pub tags: Option<Vec<String>>,
    /// Moves the entry to this project.
    pub project_id: Option<Uuid>,
}

impl DataEntryPatch {
    /// Checks every member and reports every problem at once.
    pub fn from_json(
        body: Map<String, Value>,
        limits: &MetadataLimits,
    ) -> Result<Self, Vec<FieldError>> {
        let mut patch = Self::default();
        let mut errors = Vec::new();
        for (key, value) in body {
            let field = key.as_str();
            let result = match field {
                "raw_name" => non_null(field, value)
                    .and_then(parse_raw_name)
                    .map(|v| patch.raw_name = Some(v)),
                "char_source_type" => non_null(field, value)
                    .and_then(|v| parse_enum(field, v, CharSourceType::NAMES))
                    .map(|v| patch.char_source_type = Some(v)),
                "pipeline_status" => non_null(field, value)
                    .and_then(|v| parse_enum(field, v, PipelineStatus::NAMES))
                    .map(|v| patch.pipeline_status = Some(v)),
                "physical_sample_id" => {
                    nullable(value, |v| parse_uuid(field, v)).map(|v| patch.physical_sample_id = v)
                }
                "raw_size_gb" => {
                    nullable(value, |v| parse_size(field, v)).map(|v| patch.raw_size_gb = v)
                }
                "metadata" => non_null(field, value)
                    .and_then(|v| MetadataPatch::parse(field, v, limits))
                    .map(|v| patch.metadata = Some(v)),
                "project_id" => non_null(field, value)
                    .and_then(|v| parse_uuid(field, v))
                    .map(|v| patch.project_id = Some(v)),
                _ if READ_ONLY_FIELDS.contains(&field) => Err(FieldError::read_only(field)),
                _ => Err(FieldError::unknown_field(field, WRITABLE_FIELDS)),
            };
            if let Err(error) = result {
                errors.push(error);
            }
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }
}

fn non_null(field: &str, value: Value) -> Result<Value, FieldError> {
    match value {
        Value::Null => Err(FieldError::not_nullable(field)),
        value => Ok(value),
    }
}

fn nullable<T>(
    value: Value,
    parse: impl FnOnce(Value) -> Result<T, FieldError>,
) -> Result<Patch<T>, FieldError> {
    match value {
        Value::Null => Ok(Patch::Null),
        value => parse(value).map(Patch::Set),
    }
}

/// A string without NUL characters (PostgreSQL text cannot hold them).
pub(super) fn parse_text(field: &str, value: Value) -> Result<String, FieldError> {
    let Value::String(text) = value else {
        return Err(FieldError::invalid_type(field, "a string"));
    };
    if text.contains('\0') {
        return Err(FieldError::new(
            field,
            "nul_character",
            format!("'{field}' contains a NUL character (\\u0000)"),
        ));
    }
    if text.chars().count() > MAX_RAW_NAME_CHARS {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("'{field}' is longer than {MAX_RAW_NAME_CHARS} characters"),
        ));
    }
    Ok(text)
}

fn parse_raw_name(value: Value) -> Result<String, FieldError> {
    let text = parse_text("raw_name", value)?;
    if text.is_empty() {
        return Err(FieldError::invalid_value(
            "raw_name",
            "'raw_name' must not be empty",
        ));
    }
    Ok(text)
}

pub(super) fn parse_enum<T: std::str::FromStr>(
    field: &str,
    value: Value,
    names: &'static [&'static str],
) -> Result<T, FieldError> {
    let invalid = |shown: String| FieldError {
        field: field.to_owned(),
        code: "invalid_enum_value",
        message: format!(
            "{shown} is not a valid '{field}'; allowed values: {}",
            names.join(", ")
        ),
        allowed_values: Some(names.to_vec()),
        violation: None,
    };
    match value {
        Value::String(text) => text.parse().map_err(|_| invalid(format!("'{text}'"))),
        other => Err(invalid(other.to_string())),
    }
}

fn parse_uuid(field: &str, value: Value) -> Result<Uuid, FieldError> {
    match &value {
        Value::String(text) => Uuid::parse_str(text)
            .map_err(|_| FieldError::invalid_value(field, format!("'{field}' must be a UUID"))),
        _ => Err(FieldError::invalid_type(field, "a UUID string or null")),
    }
}

fn parse_size(field: &str, value: Value) -> Result<f64, FieldError> {
    match value.as_f64() {
        Some(size) if size >= 0.0 && size.is_finite() => Ok(size),
        Some(_) => Err(FieldError::invalid_value(
            field,
            format!("'{field}' must be zero or more"),
        )),
        None => Err(FieldError::invalid_type(field, "a number or null")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(body: Value) -> Result<DataEntryPatch, Vec<FieldError>> {
        let Value::Object(body) = body else {
            panic!("test bodies are objects")
        };
        DataEntryPatch::from_json(body, &MetadataLimits::default())
    }

    #[test]
    fn absent_null_and_value_are_three_different_things() {
        let p = patch(json!({"raw_size_gb": null})).unwrap();
        assert_eq!(p.raw_size_gb, Patch::Null);
        assert_eq!(p.physical_sample_id, Patch::Absent);
        let p = patch(json!({"raw_size_gb": 1.5})).unwrap();
        assert_eq!(p.raw_size_gb, Patch::Set(1.5));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let errors =
            patch(json!({"pipeline_status": "done", "bogus": 1, "raw_name": null})).unwrap_err();
        let codes: Vec<_> = errors.iter().map(|e| e.code).collect();
        assert_eq!(codes.len(), 3);
        assert!(codes.contains(&"invalid_enum_value"));
        assert!(codes.contains(&"unknown_field"));
        assert!(codes.contains(&"null_not_allowed"));
        let enum_error = errors
            .iter()
            .find(|e| e.code == "invalid_enum_value")
            .unwrap();
        assert_eq!(
            enum_error.allowed_values.as_deref(),
            Some(PipelineStatus::NAMES)
        );
    }

    #[test]
    fn server_fields_are_read_only() {
        let errors = patch(json!({"revision": 3})).unwrap_err();
        assert_eq!(errors[0].code, "read_only_field");
    }

    #[test]
    fn create_requires_name_and_type() {
        let Value::Object(body) = json!({"pipeline_status": "success"}) else {
            unreachable!()
        };
        let errors = NewDataEntry::from_json(body, &MetadataLimits::default()).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.code == "missing_field"));
    }
}
