//! The free-form metadata document of a data entry and the limits that keep it sane.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::FieldError;

/// Configurable bounds on a metadata document (`[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct MetadataLimits {
    /// Size of the whole document as compact JSON (no whitespace between tokens), in bytes,
    /// as PostgreSQL writes the stored document out. Only the database measures it, on
    /// every write (`metadata_within_limits`), so every write path measures alike and a
    /// merge is measured on the merged document.
    pub max_bytes: usize,
    /// Number of top-level keys (Seven Bridges allows 1000).
    pub max_keys: usize,
    /// Nesting depth of objects and arrays; the document itself is depth 1.
    pub max_depth: usize,
    /// Length of any key, at any depth, in characters.
    pub max_key_length: usize,
}

impl Default for MetadataLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_keys: 1000,
            max_depth: 32,
            max_key_length: 256,
        }
    }
}

/// A JSON object that passed the limits: used as a whole document (create, PUT) or as an
/// RFC 7396 merge patch (PATCH), where a `null` member deletes the key.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataPatch(Map<String, Value>);

impl MetadataPatch {
    pub fn parse(field: &str, value: Value, limits: &MetadataLimits) -> Result<Self, FieldError> {
        let Value::Object(object) = value else {
            return Err(FieldError::invalid_type(field, "a JSON object"));
        };
        if object.len() > limits.max_keys {
            return Err(FieldError::new(
                field,
                "too_many_keys",
                format!(
                    "'{field}' has {} top-level keys; the limit is {}",
                    object.len(),
                    limits.max_keys
                ),
            ));
        }
        for (key, value) in &object {
            check_node(field, key, value, 2, limits)?;
        }
        // The size limit is the database's to check (see `MetadataLimits::max_bytes`).
        Ok(Self(object))
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    pub fn as_object(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The document an RFC 7396 merge of `patch` into `document` gives: the same document the
/// database's `jsonb_merge_patch` stores, so it can be checked before it is written.
pub fn merged(document: &Value, patch: &Value) -> Value {
    let mut result = document.clone();
    json_patch::merge(&mut result, patch);
    result
}

/// Checks one member (`key`: `value`) that sits at `depth`, and everything below it.
fn check_node(
    field: &str,
    key: &str,
    value: &Value,
    depth: usize,
    limits: &MetadataLimits,
) -> Result<(), FieldError> {
    let path = || format!("{field}.{key}");
    if key.chars().count() > limits.max_key_length {
        return Err(FieldError::new(
            path(),
            "key_too_long",
            format!(
                "a key in '{field}' is longer than {} characters",
                limits.max_key_length
            ),
        ));
    }
    if key.contains('\0') {
        return Err(nul_error(field));
    }
    match value {
        Value::String(text) if text.contains('\0') => Err(nul_error(field)),
        Value::Object(_) | Value::Array(_) if depth > limits.max_depth => Err(FieldError::new(
            path(),
            "nesting_too_deep",
            format!(
                "'{field}' is nested deeper than {} levels",
                limits.max_depth
            ),
        )),
        Value::Object(members) => members
            .iter()
            .try_for_each(|(child, value)| check_node(field, child, value, depth + 1, limits)),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_node(field, key, item, depth + 1, limits)),
        _ => Ok(()),
    }
}

fn nul_error(field: &str) -> FieldError {
    FieldError::new(
        field,
        "nul_character",
        format!("'{field}' contains a NUL character (\\u0000), which cannot be stored"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<MetadataPatch, FieldError> {
        MetadataPatch::parse("metadata", value, &MetadataLimits::default())
    }

    #[test]
    fn only_objects_are_metadata() {
        assert_eq!(parse(json!([1])).unwrap_err().code, "invalid_type");
        assert_eq!(parse(json!("x")).unwrap_err().code, "invalid_type");
        assert!(parse(json!({"a": {"b": [1, null]}})).is_ok());
    }

    #[test]
    fn nul_characters_are_refused_in_keys_and_values() {
        assert_eq!(
            parse(json!({"a": "x\u{0}y"})).unwrap_err().code,
            "nul_character"
        );
        assert_eq!(
            parse(json!({"a": {"k\u{0}": 1}})).unwrap_err().code,
            "nul_character"
        );
    }

    #[test]
    fn a_merge_deletes_nulls_merges_objects_and_replaces_the_rest() {
        let document = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        let patch = json!({"a": null, "b": {"c": null, "x": 4}, "e": [2]});
        assert_eq!(
            merged(&document, &patch),
            json!({"b": {"d": 3, "x": 4}, "e": [2]})
        );
    }

    #[test]
    fn depth_counts_the_document_as_level_one() {
        let limits = MetadataLimits {
            max_depth: 2,
            ..Default::default()
        };
        assert!(MetadataPatch::parse("m", json!({"a": {"b": 1}}), &limits).is_ok());
        let err = MetadataPatch::parse("m", json!({"a": {"b": {"c": 1}}}), &limits).unwrap_err();
        assert_eq!(err.code, "nesting_too_deep");
    }
}
