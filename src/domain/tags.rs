//! A data entry's tags: short labels, set as a whole (the `/v2` files' `tags`).

use serde_json::Value;

use super::FieldError;

/// Most tags on one entry (the database checks the same bound).
pub const MAX_TAGS: usize = 100;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 128;

/// Parses a JSON array of non-empty strings. Duplicates are dropped, first one kept, so
/// the stored list reads like a set in the order the caller gave.
pub fn parse(field: &str, value: Value) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::invalid_type(field, "a JSON array of strings"));
    };
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(tag) = item else {
            return Err(FieldError::invalid_type(field, "a JSON array of strings"));
        };
        if tag.is_empty() || tag.contains('\0') || tag.chars().count() > MAX_TAG_CHARS {
            return Err(FieldError::invalid_value(
                field,
                format!("each tag must be 1 to {MAX_TAG_CHARS} characters without NUL"),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(FieldError::new(
            field,
            "too_many_tags",
            format!("at most {MAX_TAGS} tags per file"),
        ));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_dropped_in_order() {
        assert_eq!(
            parse("tags", json!(["b", "a", "b"])).unwrap(),
            vec!["b".to_owned(), "a".to_owned()]
        );
    }

    #[test]
    fn only_arrays_of_sane_strings_are_tags() {
        assert_eq!(parse("tags", json!("a")).unwrap_err().code, "invalid_type");
        assert_eq!(parse("tags", json!([1])).unwrap_err().code, "invalid_type");
        assert_eq!(
            parse("tags", json!([""])).unwrap_err().code,
            "invalid_value"
        );
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        assert_eq!(
            parse("tags", json!(many)).unwrap_err().code,
            "too_many_tags"
        );
    }
}
