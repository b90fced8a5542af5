use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::FieldError;
use super::data_entry::parse_text;

/// A physical sample that data entries can point at.
#[derive(Debug, Clone)]
pub struct PhysicalSample {
    pub physical_sample_id: Uuid,
    pub name: String,
    pub user_id: String,
    pub project_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Serialize for PhysicalSample {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The Atomscale SDK reads `id`; the catalogue's own name is `physical_sample_id`.
        #[derive(Serialize)]
        struct Wire<'a> {
            id: Uuid,
            physical_sample_id: Uuid,
            name: &'a str,
            user_id: &'a str,
            project_id: Uuid,
            created_at: String,
        }
        Wire {
            id: self.physical_sample_id,
            physical_sample_id: self.physical_sample_id,
            name: &self.name,
            user_id: &self.user_id,
            project_id: self.project_id,
            created_at: super::timestamp::format(&self.created_at),
        }
        .serialize(serializer)
    }
}

#[derive(Debug, Clone)]
pub struct NewPhysicalSample {
    pub name: String,
    /// Where the sample goes; the caller's default project when `None`.
    pub project_id: Option<Uuid>,
}

impl NewPhysicalSample {
    pub fn from_json(body: Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut name = None;
        let mut project_id = None;
        for (key, value) in body {
            match key.as_str() {
                "name" => match parse_text("name", value) {
                    Ok(text) if !text.trim().is_empty() => name = Some(text),
                    Ok(_) => errors.push(FieldError::invalid_value("name", "'name' is blank")),
                    Err(error) => errors.push(error),
                },
                "project_id" => match value.as_str().map(Uuid::parse_str) {
                    Some(Ok(id)) => project_id = Some(id),
                    _ => errors.push(FieldError::invalid_value(
                        "project_id",
                        "'project_id' must be a UUID",
                    )),
                },
                _ => errors.push(FieldError::unknown_field(&key, &["name", "project_id"])),
            }
        }
        match name {
            Some(name) if errors.is_empty() => Ok(Self { name, project_id }),
            None if errors.is_empty() => Err(vec![FieldError::required("name")]),
            _ => Err(errors),
        }
    }
}
