//! `GET /v2/files`: the Seven Bridges file listing's parameters, with offset paging.
//! Repeating `name` or `tag` means any of them; repeating one `metadata.<key>` means any
//! of its values, while different keys must all match (as the Seven Bridges API defines).

use super::FieldError;
use super::query_limits::{MAX_IDS, MAX_METADATA_FILTERS, MAX_PARAMETERS, too_many};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct FileQuery {
    pub offset: i64,
    pub limit: i64,
    /// The project asked for, as its `/v2` id `owner/slug` (a bare user id: that user's
    /// personal project).
    pub project: Option<String>,
    /// That project, once the route has found it among those the caller may read.
    pub project_id: Option<uuid::Uuid>,
    /// Folders and datasets, which labcat does not have.
    pub parent: Option<String>,
    pub dataset: Option<String>,
    pub names: Vec<String>,
    pub tags: Vec<String>,
    /// Each key with the values it may have, keys in the order first given.
    pub metadata: Vec<(String, Vec<String>)>,
    /// `origin.<key>` filters: labcat files have no origin, so any of them matches nothing.
    pub origin: Vec<(String, String)>,
}

impl Default for FileQuery {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: DEFAULT_LIMIT,
            project: None,
            project_id: None,
            parent: None,
            dataset: None,
            names: Vec::new(),
            tags: Vec::new(),
            metadata: Vec::new(),
            origin: Vec::new(),
        }
    }
}

impl FileQuery {
    /// The owner and slug `project` names: `owner/slug`, or a bare user id for that user's
    /// personal project (what `project` meant before labcat had projects).
    pub fn project_path(&self) -> Option<(&str, &str)> {
        let project = self.project.as_deref()?;
        Some(project.split_once('/').unwrap_or((project, "personal")))
    }

    /// Parses decoded query pairs; every problem is reported.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = Self::default();
        let mut errors = Vec::new();
        for (count, (name, value)) in pairs.into_iter().enumerate() {
            if count == MAX_PARAMETERS {
                return Err(vec![too_many("query parameters", MAX_PARAMETERS)]);
            }
            if let Err(error) = query.apply(name, value) {
                errors.push(error);
            }
        }
        let metadata_values = query.metadata.iter().map(|(_, values)| values.len()).sum();
        for (parameter, count, limit) in [
            ("metadata", metadata_values, MAX_METADATA_FILTERS),
            ("name", query.names.len(), MAX_IDS),
            ("tag", query.tags.len(), MAX_IDS),
        ] {
            if count > limit {
                errors.insert(0, too_many(parameter, limit));
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), FieldError> {
        if value.contains('\0') || name.contains('\0') {
            return Err(FieldError::invalid_value(name, "parameters contain no NUL"));
        }
        if let Some(key) = name.strip_prefix("metadata.") {
            if key.is_empty() {
                return Err(FieldError::invalid_value(
                    name,
                    "metadata filters need a key",
                ));
            }
            match self.metadata.iter_mut().find(|(known, _)| known == key) {
                Some((_, values)) => values.push(value.to_owned()),
                None => self.metadata.push((key.to_owned(), vec![value.to_owned()])),
            }
            return Ok(());
        }
        if let Some(key) = name.strip_prefix("origin.") {
            self.origin.push((key.to_owned(), value.to_owned()));
            return Ok(());
        }
        match name {
            "offset" => {
                self.offset = value
                    .parse()
                    .ok()
                    .filter(|offset| *offset >= 0)
                    .ok_or_else(|| {
                        FieldError::invalid_value(name, "'offset' must be an integer of 0 or more")
                    })?
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
            "project" => self.project = Some(value.to_owned()),
            "parent" => self.parent = Some(value.to_owned()),
            "dataset" => self.dataset = Some(value.to_owned()),
            // The client sends an empty `name=` for an empty list: no name filter.
            "name" if value.is_empty() => {}
            "name" => self.names.push(value.to_owned()),
            "tag" => self.tags.push(value.to_owned()),
            // Chooses the response's members; the route applies it.
            "fields" => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_sevenbridges_python_sends() {
        let query = FileQuery::parse([
            ("offset", "2"),
            ("limit", "2"),
            ("fields", "_all"),
            ("project", "alice"),
            ("name", "a.fastq"),
            ("name", "b.fastq"),
            ("metadata.sample_id", "S1"),
            ("metadata.sample_id", "S2"),
            ("metadata.n", "5"),
            ("tag", "t1"),
        ])
        .unwrap();
        assert_eq!((query.offset, query.limit), (2, 2));
        assert_eq!(query.project.as_deref(), Some("alice"));
        assert_eq!(query.names, ["a.fastq", "b.fastq"]);
        assert_eq!(
            query.metadata,
            vec![
                (
                    "sample_id".to_owned(),
                    vec!["S1".to_owned(), "S2".to_owned()]
                ),
                ("n".to_owned(), vec!["5".to_owned()]),
            ]
        );
        assert_eq!(query.tags, ["t1"]);
    }

    #[test]
    fn paging_bounds_and_unknown_parameters_are_refused() {
        let errors =
            FileQuery::parse([("limit", "101"), ("offset", "-1"), ("bogus", "1")]).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "offset", "bogus"]);
        assert_eq!(FileQuery::parse([]).unwrap().limit, DEFAULT_LIMIT);
    }
}
