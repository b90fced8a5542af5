//! `?fields=a,b`: which members of a response object to return.

use serde_json::Value;

use super::FieldError;
use super::query_limits::{MAX_FIELD_NAMES, too_many};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldSelection(Option<Vec<String>>);

impl FieldSelection {
    pub const ALL: FieldSelection = FieldSelection(None);

    /// Parses a `fields` parameter. With `known` given, every name must be one of them
    /// (entry fields); without, any name is fine (metadata keys).
    pub fn parse(raw: Option<&str>, known: Option<&[&str]>) -> Result<Self, FieldError> {
        let Some(raw) = raw else {
            return Ok(Self::ALL);
        };
        let mut names: Vec<String> = Vec::new();
        for name in raw
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            if names.iter().any(|known| known == name) {
                continue;
            }
            if names.len() == MAX_FIELD_NAMES {
                return Err(too_many("fields", MAX_FIELD_NAMES));
            }
            names.push(name.to_owned());
        }
        if names.is_empty() || names.iter().any(|name| name == "_all") {
            return Ok(Self::ALL);
        }
        if let Some(known) = known
            && let Some(unknown) = names.iter().find(|name| !known.contains(&name.as_str()))
        {
            return Err(FieldError::new(
                "fields",
                "unknown_field",
                format!(
                    "unknown field '{unknown}' in 'fields'; known fields: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Self(Some(names)))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// Keeps only the selected members of an object; anything else passes through.
    pub fn apply(&self, mut value: Value) -> Value {
        if let (Some(names), Value::Object(members)) = (&self.0, &mut value) {
            members.retain(|key, _| names.iter().any(|name| name == key));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_selected_members() {
        let selection = FieldSelection::parse(Some("a, c"), Some(&["a", "b", "c"])).unwrap();
        assert_eq!(
            selection.apply(json!({"a": 1, "b": 2, "c": 3})),
            json!({"a": 1, "c": 3})
        );
    }

    #[test]
    fn unknown_names_are_refused_only_when_names_are_known() {
        assert!(FieldSelection::parse(Some("zzz"), Some(&["a"])).is_err());
        assert!(FieldSelection::parse(Some("zzz"), None).is_ok());
    }

    #[test]
    fn repeated_names_count_once_and_too_many_are_refused() {
        let repeated = vec!["a"; 10_000].join(",");
        let selection = FieldSelection::parse(Some(&repeated), Some(&["a"])).unwrap();
        assert_eq!(selection, FieldSelection(Some(vec!["a".to_owned()])));
        let many = (0..=MAX_FIELD_NAMES)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>();
        let error = FieldSelection::parse(Some(&many.join(",")), None).unwrap_err();
        assert_eq!(error.code, "too_many_values");
    }
}
