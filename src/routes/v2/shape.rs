//! Data entries as Seven Bridges file objects. sevenbridges-python is strict about these:
//! an absolute `href` (it reloads through it), a string `id`, an integer `size`,
//! timestamps with `Z`, `metadata` an object and `tags` an array, never null.

use std::collections::HashMap;

use actix_web::HttpRequest;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db;
use crate::domain::{Access, DataEntry, FieldSelection, timestamp};
use crate::error::ApiError;

/// Every member of a file object; `?fields=` must name these.
pub const FILE_FIELDS: &[&str] = &[
    "href",
    "id",
    "name",
    "size",
    "project",
    "parent",
    "type",
    "created_on",
    "modified_on",
    "storage",
    "origin",
    "tags",
    "metadata",
];

const BYTES_PER_GB: f64 = 1e9;

/// The externally visible root of the surface, e.g. `http://127.0.0.1:8080/v2`: every
/// `href` is absolute because the client requests them as they are.
pub fn base_url(request: &HttpRequest) -> String {
    format!(
        "{}{}",
        crate::routes::public_url::base(request),
        super::PREFIX
    )
}

/// A file id from the path. Seven Bridges ids are not UUIDs, so anything that is not one
/// names no file: 404, as for any other unknown id.
pub fn file_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound {
        what: "file",
        id: raw.to_owned(),
    })
}

/// The `/v2` ids (`created_by/slug`) of the projects of the entries being shaped, looked up
/// once per request (one small statement for all the projects a response names) rather
/// than joined into every entry statement the native API shares.
#[derive(Default)]
pub struct ProjectIds(HashMap<Uuid, String>);

impl ProjectIds {
    /// Looks up those of `projects` not known yet.
    pub async fn load(
        &mut self,
        conn: &mut PgConnection,
        access: Access<'_>,
        projects: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), ApiError> {
        let mut missing: Vec<Uuid> = projects
            .into_iter()
            .filter(|project| !self.0.contains_key(project))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            self.0
                .extend(db::projects::paths(&mut *conn, access, &missing).await?);
        }
        Ok(())
    }

    /// Just the project `id` is (a project found by its `/v2` id already).
    pub fn one(project: Uuid, id: String) -> Self {
        Self(HashMap::from([(project, id)]))
    }

    fn get(&self, project: Uuid) -> String {
        // A project deleted since its entry was read: its uuid still names it.
        self.0
            .get(&project)
            .cloned()
            .unwrap_or_else(|| project.to_string())
    }
}

pub fn file_json(entry: &DataEntry, base: &str, projects: &ProjectIds) -> Value {
    into_file_json(entry.clone(), base, projects)
}

/// The file object of `entry`, moving its metadata and tags rather than copying them.
pub fn into_file_json(entry: DataEntry, base: &str, projects: &ProjectIds) -> Value {
    let metadata = match entry.metadata {
        Value::Object(_) => entry.metadata,
        _ => json!({}),
    };
    let mut file = json!({
        "href": format!("{base}/files/{}", entry.data_id),
        "id": entry.data_id.to_string(),
        "name": entry.raw_name,
        // Unknown sizes stay unknown (null) rather than pretending the file is empty.
        "size": entry.raw_size_gb.map(|gb| (gb * BYTES_PER_GB).round() as i64),
        "project": projects.get(entry.project_id),
        // …nor folders.
        "parent": Value::Null,
        "type": "file",
        "created_on": timestamp::format(&entry.upload_datetime),
        "modified_on": timestamp::format(&entry.last_updated),
        "storage": {"type": "PLATFORM"},
        "origin": {},
        "tags": Value::Null,
        "metadata": Value::Null,
    });
    // Moved in, not through `json!`, which would copy them.
    file["tags"] = Value::from(entry.tags);
    file["metadata"] = metadata;
    file
}

/// `?fields=` for file objects (`_all` or absent: everything).
pub fn file_fields(pairs: &[(String, String)]) -> Result<FieldSelection, ApiError> {
    FieldSelection::parse(
        crate::routes::response::fields_param(pairs),
        Some(FILE_FIELDS),
    )
    .map_err(|error| ApiError::BadQuery(vec![error]))
}

/// The selected members of a file object, always with `href` and `id`, which the client
/// needs to fetch the rest.
pub fn select(fields: &FieldSelection, file: Value) -> Value {
    let mut selected = fields.apply(file.clone());
    if let (Value::Object(selected), Value::Object(file)) = (&mut selected, file) {
        for key in ["href", "id"] {
            if let Some(value) = file.get(key) {
                selected.insert(key.to_owned(), value.clone());
            }
        }
    }
    selected
}

/// Metadata as written through `/v2` as a whole document: a key set to `null` means
/// "not there" (sevenbridges-python sends `null` for keys set to `None`).
pub fn without_nulls(document: Value) -> Value {
    match document {
        Value::Object(mut members) => {
            members.retain(|_, value| !value.is_null());
            Value::Object(members)
        }
        other => other,
    }
}
