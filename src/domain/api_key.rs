//! Asking for an API key over HTTP, and who may manage which keys. No I/O here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{FieldError, Scope, timestamp};

/// Longest key name (the column's CHECK says the same).
pub const MAX_NAME_CHARS: usize = 256;
const FIELDS: &[&str] = &["name", "scopes", "expires_at", "user_id", "projects"];
/// Most projects one key may be limited to.
pub const MAX_KEY_PROJECTS: usize = 100;

/// A user id: 1-128 letters, digits, `_`, `.`, `@` or `-` (as the users table checks).
pub fn valid_user_id(user: &str) -> bool {
    (1..=128).contains(&user.len())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
}

/// The body of `POST /api_keys`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whose key; `None` means the caller's own.
    pub user_id: Option<String>,
    /// The projects the key is limited to; `None` means as many as its maker reaches.
    pub projects: Option<Vec<Uuid>>,
}

impl NewApiKey {
    pub fn from_json(
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let (mut name, mut scopes, mut expires_at, mut user_id) = (None, None, None, None);
        let mut projects = None;
        for (field, value) in body {
            let parsed = match field.as_str() {
                "name" => parse_name(value).map(|v| name = Some(v)),
                "scopes" => parse_scopes(value).map(|v| scopes = Some(v)),
                "expires_at" => parse_expiry(value, now).map(|v| expires_at = v),
                "user_id" => parse_user_id(value).map(|v| user_id = v),
                "projects" => parse_projects(value).map(|v| projects = v),
                _ => Err(FieldError::unknown_field(&field, FIELDS)),
            };
            if let Err(error) = parsed {
                errors.push(error);
            }
        }
        if errors.is_empty() && name.is_none() {
            errors.push(FieldError::required("name"));
        }
        if errors.is_empty() && scopes.is_none() {
            errors.push(FieldError::required("scopes"));
        }
        match (name, scopes) {
            (Some(name), Some(scopes)) if errors.is_empty() => Ok(Self {
                name,
                scopes,
                expires_at,
                user_id,
                projects,
            }),
            _ => Err(errors),
        }
    }

    /// The expiry of the key to mint, which may not outlive `parent` (the expiry of the
    /// key minting it): none asked for means the parent's; a later one than the parent's
    /// is refused (`expires_after_parent`) rather than quietly shortened, since the caller
    /// named a time it would not get.
    pub fn expiry_within(
        &self,
        parent: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, FieldError> {
        match (self.expires_at, parent) {
            (None, parent) => Ok(parent),
            (Some(asked), Some(parent)) if asked > parent => Err(FieldError::new(
                "expires_at",
                "expires_after_parent",
                format!(
                    "'expires_at' is later than {}, when the key making this one expires; \
                     a key cannot outlive the key that made it",
                    timestamp::format(&parent)
                ),
            )),
            (Some(asked), _) => Ok(Some(asked)),
        }
    }

    /// The projects of the key to mint, which may not reach beyond `parent`'s (the projects
    /// the key minting it is limited to): none asked for means the parent's; any outside
    /// them is refused (`projects_beyond_parent`).
    pub fn projects_within(
        &self,
        parent: Option<&[Uuid]>,
    ) -> Result<Option<Vec<Uuid>>, FieldError> {
        match (&self.projects, parent) {
            (None, parent) => Ok(parent.map(<[Uuid]>::to_vec)),
            (Some(asked), Some(parent)) if asked.iter().any(|p| !parent.contains(p)) => {
                Err(FieldError::new(
                    "projects",
                    "projects_beyond_parent",
                    "'projects' names a project the key making this one is not limited to; a \
                     key cannot reach further than the key that made it",
                ))
            }
            (Some(asked), _) => Ok(Some(asked.clone())),
        }
    }

    /// The first requested scope the caller does not hold: a key can only hand on what it
    /// has.
    pub fn scope_beyond(&self, caller: &[Scope]) -> Option<Scope> {
        self.scopes
            .iter()
            .copied()
            .find(|scope| !caller.contains(scope))
    }
}

fn parse_name(value: Value) -> Result<String, FieldError> {
    let Value::String(name) = value else {
        return Err(FieldError::invalid_type("name", "a string"));
    };
    if name.trim().is_empty() {
        return Err(FieldError::invalid_value("name", "'name' is blank"));
    }
    if name.contains('\0') {
        return Err(FieldError::new(
            "name",
            "nul_character",
            "'name' contains a NUL character (\\u0000)",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            "too_long",
            format!("'name' is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

fn parse_scopes(value: Value) -> Result<Vec<Scope>, FieldError> {
    let Value::Array(items) = value else {
        return Err(FieldError::invalid_type(
            "scopes",
            "an array of scope names",
        ));
    };
    let mut scopes = Vec::new();
    for item in items {
        let scope = item
            .as_str()
            .and_then(|text| text.parse::<Scope>().ok())
            .ok_or_else(|| FieldError {
                field: "scopes".into(),
                code: "invalid_enum_value",
                message: format!(
                    "{item} is not a valid scope; allowed values: {}",
                    Scope::NAMES.join(", ")
                ),
                allowed_values: Some(Scope::NAMES.to_vec()),
                violation: None,
            })?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(FieldError::invalid_value(
            "scopes",
            "'scopes' needs at least one scope",
        ));
    }
    Ok(scopes)
}

fn parse_expiry(value: Value, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let at = match value {
        Value::Null => return Ok(None),
        Value::String(text) => timestamp::parse(&text).ok_or_else(|| {
            FieldError::invalid_value("expires_at", "'expires_at' must be an RFC 3339 timestamp")
        })?,
        _ => {
            return Err(FieldError::invalid_type(
                "expires_at",
                "an RFC 3339 timestamp or null",
            ));
        }
    };
    if at <= now {
        return Err(FieldError::invalid_value(
            "expires_at",
            "'expires_at' must be in the future",
        ));
    }
    Ok(Some(at))
}

fn parse_projects(value: Value) -> Result<Option<Vec<Uuid>>, FieldError> {
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err(FieldError::invalid_type(
                "projects",
                "an array of project ids",
            ));
        }
    };
    let mut projects = Vec::new();
    for item in items {
        let project = item
            .as_str()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| {
                FieldError::invalid_value("projects", format!("{item} is not a project id"))
            })?;
        if !projects.contains(&project) {
            projects.push(project);
        }
    }
    if projects.is_empty() || projects.len() > MAX_KEY_PROJECTS {
        return Err(FieldError::invalid_value(
            "projects",
            format!("'projects' needs 1 to {MAX_KEY_PROJECTS} project ids (leave it out for all)"),
        ));
    }
    Ok(Some(projects))
}

fn parse_user_id(value: Value) -> Result<Option<String>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(user) if valid_user_id(&user) => Ok(Some(user)),
        Value::String(_) => Err(FieldError::invalid_value(
            "user_id",
            "'user_id' must be 1-128 letters, digits, '_', '.', '@' or '-'",
        )),
        _ => Err(FieldError::invalid_type("user_id", "a string")),
    }
}

/// A key as lists show it: never the secret, never its hash.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub user_id: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize_optional")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::serialize_optional")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::serialize_optional")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// The projects the key is limited to; `null`: all of its user's.
    pub projects: Option<Vec<Uuid>>,
}

impl ApiKeyView {
    pub fn status_at(
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> &'static str {
        if revoked_at.is_some() {
            "revoked"
        } else if expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<NewApiKey, Vec<FieldError>> {
        let Value::Object(body) = body else {
            unreachable!()
        };
        NewApiKey::from_json(body, Utc::now())
    }

    #[test]
    fn a_request_needs_a_name_and_known_scopes() {
        let key = parse(json!({"name": "ci", "scopes": ["read", "read", "write"]})).unwrap();
        assert_eq!(key.scopes, [Scope::Read, Scope::Write]);
        assert_eq!(
            parse(json!({"scopes": ["read"]})).unwrap_err()[0].code,
            "missing_field"
        );
        let errors = parse(json!({"name": "x", "scopes": ["root"]})).unwrap_err();
        assert_eq!(errors[0].code, "invalid_enum_value");
        assert_eq!(errors[0].allowed_values.as_deref(), Some(Scope::NAMES));
        assert!(parse(json!({"name": "x", "scopes": []})).is_err());
        let errors = parse(json!({"name": "x", "scopes": ["read"], "secret": 1})).unwrap_err();
        assert_eq!(errors[0].code, "unknown_field");
    }

    #[test]
    fn expiry_must_be_a_future_timestamp() {
        let ok =
            parse(json!({"name": "x", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"}));
        assert!(ok.unwrap().expires_at.is_some());
        for bad in [json!("2001-01-01T00:00:00Z"), json!("soon"), json!(5)] {
            assert!(parse(json!({"name": "x", "scopes": ["read"], "expires_at": bad})).is_err());
        }
    }

    #[test]
    fn a_minted_key_expires_no_later_than_its_parent() {
        let parent: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let forever = parse(json!({"name": "x", "scopes": ["read"]})).unwrap();
        assert_eq!(forever.expiry_within(Some(parent)), Ok(Some(parent)));
        assert_eq!(forever.expiry_within(None), Ok(None));
        let sooner =
            parse(json!({"name": "x", "scopes": ["read"], "expires_at": "2029-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(sooner.expiry_within(Some(parent)), Ok(sooner.expires_at));
        let later =
            parse(json!({"name": "x", "scopes": ["read"], "expires_at": "2031-01-01T00:00:00Z"}))
                .unwrap();
        let error = later.expiry_within(Some(parent)).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.code),
            ("expires_at", "expires_after_parent")
        );
        assert!(
            error.message.contains("2030-01-01T00:00:00Z"),
            "{}",
            error.message
        );
        assert_eq!(later.expiry_within(None), Ok(later.expires_at));
    }

    #[test]
    fn scopes_beyond_the_callers_are_named() {
        let key = parse(json!({"name": "x", "scopes": ["read", "admin"]})).unwrap();
        assert_eq!(
            key.scope_beyond(&[Scope::Read, Scope::Write]),
            Some(Scope::Admin)
        );
        assert_eq!(key.scope_beyond(&[Scope::Read, Scope::Admin]), None);
    }

    #[test]
    fn user_ids_follow_the_table_rule() {
        assert!(valid_user_id("user_abc123"));
        assert!(valid_user_id("a.b@c-d"));
        assert!(!valid_user_id(""));
        assert!(!valid_user_id("no spaces"));
        assert!(!valid_user_id(&"x".repeat(129)));
    }
}
