use serde::Serialize;

/// One thing wrong with one field of a request. Becomes an item of the problem's `errors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    /// Stable machine code (`invalid_enum_value`, `unknown_field`, ...).
    #[serde(skip)]
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<&'static str>>,
    /// For a metadata schema violation: where it is and which keyword failed (boxed: most
    /// errors have none, and every error travels in a `Result`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub violation: Option<Box<ViolationAt>>,
}

/// Where a metadata schema violation is: `path` a JSON Pointer into the metadata document,
/// `keyword` the schema keyword that failed (`minimum`, `required`, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViolationAt {
    pub path: String,
    pub keyword: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
            allowed_values: None,
            violation: None,
        }
    }

    pub fn unknown_field(field: &str, known: &[&str]) -> Self {
        Self::new(
            field,
            "unknown_field",
            format!(
                "unknown field '{field}'; known fields: {}",
                known.join(", ")
            ),
        )
    }

    pub fn invalid_type(field: &str, expected: &str) -> Self {
        Self::new(
            field,
            "invalid_type",
            format!("'{field}' must be {expected}"),
        )
    }

    pub fn invalid_value(field: &str, message: impl Into<String>) -> Self {
        Self::new(field, "invalid_value", message)
    }

    pub fn required(field: &str) -> Self {
        Self::new(field, "missing_field", format!("'{field}' is required"))
    }

    pub fn not_nullable(field: &str) -> Self {
        Self::new(
            field,
            "null_not_allowed",
            format!("'{field}' is required and cannot be null"),
        )
    }

    pub fn read_only(field: &str) -> Self {
        Self::new(
            field,
            "read_only_field",
            format!("'{field}' is set by the server and cannot be changed"),
        )
    }
}
