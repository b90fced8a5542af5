//! Projects: what a lab shares. Members hold a `Role` in a project; entries and samples
//! belong to exactly one.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{FieldError, Role};

#[derive(Debug, Clone)]
pub struct Project {
    pub project_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_by: String,
    pub personal: bool,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

/// A project as one caller sees it: with the caller's role and how many samples it holds.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub project: Project,
    pub role: Role,
    pub physical_sample_count: i64,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
    /// Seven Bridges' `execute` permission: stored and echoed, it grants nothing here.
    pub execute: bool,
}

const MAX_NAME_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 4096;

/// A create or rename: `name` required on create; `description: null` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

impl ProjectChange {
    pub fn from_json(body: Map<String, Value>, creating: bool) -> Result<Self, Vec<FieldError>> {
        let mut change = Self::default();
        let mut errors = Vec::new();
        for (key, value) in body {
            match (key.as_str(), value) {
                ("name", Value::String(name))
                    if !name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS =>
                {
                    change.name = Some(name.trim().to_owned())
                }
                ("name", _) => errors.push(FieldError::invalid_value(
                    "name",
                    format!("'name' must be a non-blank string of at most {MAX_NAME_CHARS} characters"),
                )),
                ("description", Value::Null) => change.description = Some(None),
                ("description", Value::String(text))
                    if text.chars().count() <= MAX_DESCRIPTION_CHARS =>
                {
                    change.description = Some(Some(text))
                }
                ("description", _) => errors.push(FieldError::invalid_value(
                    "description",
                    format!("'description' must be a string of at most {MAX_DESCRIPTION_CHARS} characters, or null"),
                )),
                (other, _) => {
                    errors.push(FieldError::unknown_field(other, &["name", "description"]))
                }
            }
        }
        if creating && change.name.is_none() && errors.is_empty() {
            errors.push(FieldError::required("name"));
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }
}

/// The short name a project's `/v2` id is made of, as Seven Bridges derives it: lower case,
/// every character but ASCII letters and digits a `-`, runs of them one, none at the ends.
/// A name with no letter or digit at all becomes `project`.
pub fn slug(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_end_matches('-').chars().take(100).collect();
    slug.truncate(slug.trim_end_matches('-').len());
    if slug.is_empty() {
        slug.push_str("project");
    }
    slug
}

/// A membership change: the role to give.
pub fn parse_role(body: Map<String, Value>) -> Result<Role, Vec<FieldError>> {
    let mut role = None;
    let mut errors = Vec::new();
    for (key, value) in body {
        match key.as_str() {
            "role" => match super::data_entry::parse_enum("role", value, Role::NAMES) {
                Ok(parsed) => role = Some(parsed),
                Err(error) => errors.push(error),
            },
            other => errors.push(FieldError::unknown_field(other, &["role"])),
        }
    }
    match role {
        Some(role) if errors.is_empty() => Ok(role),
        None if errors.is_empty() => Err(vec![FieldError::required("role")]),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_seven_bridges_example() {
        assert_eq!(slug("rfranklin's Demo Project"), "rfranklin-s-demo-project");
        assert_eq!(slug("  GaN -- growth 2026 "), "gan-growth-2026");
        assert_eq!(slug("Ünïcode ✓"), "n-code");
        assert_eq!(slug("✓✓"), "project");
    }
}
