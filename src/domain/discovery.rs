//! What the entries a caller may read hold (issue 14): the metadata paths in use
//! (`GET /metadata/keys`) and the most frequent values of a few fields or paths
//! (`GET /data_entries/facets`). Parsed and shaped here; counted in `db::discovery`, over
//! the same access predicate as search.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::metadata_query::parse_path;
use super::query_limits::{MAX_IDS, MAX_PARAMETERS, too_many};
use super::search::{CursorKey, SearchQuery, parse_uuids};
use super::{CharSourceType, FieldError};

/// Most paths `GET /metadata/keys` lists: the most frequent ones (then by path).
pub const MAX_KEYS: i64 = 1000;
/// Most facets one request may ask for (a repeated one counts once).
pub const MAX_FACETS: usize = 10;
/// Values listed per facet: the most frequent ones (then by value).
pub const FACET_VALUES: i64 = 50;

/// `GET /metadata/keys?project_id=…&char_source_type=…&prefix=…`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeysQuery {
    /// The entries counted, of those the caller may read: only `project_ids` and
    /// `data_type` are ever set.
    pub entries: SearchQuery,
    /// Only paths whose written form (`write_path`) starts with this.
    pub prefix: Option<String>,
}

impl KeysQuery {
    /// Parses decoded query pairs. `project_id` may repeat (any of them); the others may
    /// be given once.
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
        if query.entries.project_ids.len() > MAX_IDS {
            errors.insert(0, too_many("project_id", MAX_IDS));
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), FieldError> {
        let once = || FieldError::invalid_value(name, format!("'{name}' may be given once"));
        match name {
            "project_id" | "project_ids" => {
                self.entries.project_ids.extend(parse_uuids(name, value)?)
            }
            "char_source_type" => {
                if self.entries.data_type.is_some() {
                    return Err(once());
                }
                let allowed = CharSourceType::NAMES;
                self.entries.data_type = Some(value.parse().map_err(|()| FieldError {
                    allowed_values: Some(allowed.to_vec()),
                    ..FieldError::new(
                        name,
                        "invalid_enum_value",
                        format!(
                            "'{value}' is not a valid 'char_source_type'; allowed values: {}",
                            allowed.join(", ")
                        ),
                    )
                })?);
            }
            "prefix" => {
                if self.prefix.is_some() {
                    return Err(once());
                }
                if value.contains('\0') {
                    return Err(FieldError::invalid_value(name, "'prefix' contains a NUL"));
                }
                self.prefix = Some(value.to_owned());
            }
            _ => return Err(unknown_parameter(name, "")),
        }
        Ok(())
    }
}

fn unknown_parameter(name: &str, why: &str) -> FieldError {
    FieldError::new(
        name,
        "unknown_parameter",
        format!("unknown query parameter '{name}'{why}"),
    )
}

/// One path of `GET /metadata/keys`: how many entries have a value there, of which types
/// (an entry counts once per type, however many array elements of it it holds there), and
/// for quantities, in which units.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetadataKey {
    /// As filters take it (`write_path`).
    pub path: String,
    pub count: i64,
    pub types: TypeCounts,
    /// Only when some entry holds a quantity at the path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<BTreeMap<String, i64>>,
}

/// Entries holding each type of value at a path; types none holds are left out.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TypeCounts {
    #[serde(skip_serializing_if = "is_zero")]
    pub string: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub number: i64,
    /// `{"value": <number>, "unit": <string>}` (listed as one key, not as its members).
    #[serde(skip_serializing_if = "is_zero")]
    pub quantity: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub boolean: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub null: i64,
    /// An empty object (a non-empty one is listed by its members' paths).
    #[serde(skip_serializing_if = "is_zero")]
    pub object: i64,
    /// An empty array (a non-empty one by its elements, at the array's path).
    #[serde(skip_serializing_if = "is_zero")]
    pub array: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A column an entry can be faceted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacetColumn {
    CharSourceType,
    PipelineStatus,
    ProjectId,
    PhysicalSampleId,
}

impl FacetColumn {
    const ALL: [FacetColumn; 4] = [
        FacetColumn::CharSourceType,
        FacetColumn::PipelineStatus,
        FacetColumn::ProjectId,
        FacetColumn::PhysicalSampleId,
    ];

    /// The column's name, which is also the facet's.
    pub fn column(self) -> &'static str {
        match self {
            FacetColumn::CharSourceType => "char_source_type",
            FacetColumn::PipelineStatus => "pipeline_status",
            FacetColumn::ProjectId => "project_id",
            FacetColumn::PhysicalSampleId => "physical_sample_id",
        }
    }
}

/// What `facet=` may name.
pub const FACETABLE: &[&str] = &[
    "char_source_type",
    "pipeline_status",
    "project_id",
    "physical_sample_id",
    "metadata.<path>",
];

/// What one facet counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Facet {
    /// The column's values (entries where it is null are not counted).
    Column(FacetColumn),
    /// The JSON values at the path (the keys `parse_path` gives), array elements one by
    /// one; an entry counts once per distinct value.
    Metadata(Vec<String>),
}

impl Facet {
    fn parse(text: &str) -> Result<Self, FieldError> {
        if let Some(path) = text.strip_prefix("metadata.") {
            return parse_path("facet", path).map(Facet::Metadata);
        }
        FacetColumn::ALL
            .into_iter()
            .find(|column| column.column() == text)
            .map(Facet::Column)
            .ok_or_else(|| FieldError {
                allowed_values: Some(FACETABLE.to_vec()),
                ..FieldError::invalid_value(
                    "facet",
                    format!(
                        "cannot facet on '{text}'; allowed: {}",
                        FACETABLE.join(", ")
                    ),
                )
            })
    }
}

/// Search parameters that shape a page of entries, which facets do not return.
const NOT_FOR_FACETS: &[&str] = &["limit", "cursor", "order_by", "fields"];

/// `GET /data_entries/facets?facet=…&facet=…&<search filters>`.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetsQuery {
    /// Each facet as it was asked for (the answer's key) with what it counts: in request
    /// order, each once, 1 to `MAX_FACETS` of them.
    pub facets: Vec<(String, Facet)>,
    /// The entries counted, of those the caller may read: any search filter.
    pub entries: SearchQuery,
}

impl FacetsQuery {
    /// Parses decoded query pairs: the `facet`s, and the rest as search filters
    /// (`SearchQuery::parse`), without paging, ordering or `fields`. A bad facet's error
    /// names `facet`.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        cursor_key: &CursorKey,
    ) -> Result<Self, Vec<FieldError>> {
        let mut facets: Vec<(String, Facet)> = Vec::new();
        let mut filters = Vec::new();
        let mut errors = Vec::new();
        let mut facet_errors = false;
        for (count, (name, value)) in pairs.into_iter().enumerate() {
            if count == MAX_PARAMETERS {
                return Err(vec![too_many("query parameters", MAX_PARAMETERS)]);
            }
            match name {
                "facet" => match Facet::parse(value) {
                    Ok(_) if facets.iter().any(|(asked, _)| asked == value) => {}
                    Ok(facet) => facets.push((value.to_owned(), facet)),
                    Err(error) => {
                        facet_errors = true;
                        errors.push(error);
                    }
                },
                _ if NOT_FOR_FACETS.contains(&name) => errors.push(unknown_parameter(
                    name,
                    ": facets count every matching entry (no paging, ordering or fields)",
                )),
                _ => filters.push((name, value)),
            }
        }
        if facets.is_empty() && !facet_errors {
            errors.insert(0, FieldError::required("facet"));
        }
        if facets.len() > MAX_FACETS {
            errors.insert(0, too_many("facet", MAX_FACETS));
        }
        match SearchQuery::parse(filters, cursor_key) {
            Ok(entries) if errors.is_empty() => Ok(Self { facets, entries }),
            Ok(_) => Err(errors),
            Err(filter_errors) => {
                errors.extend(filter_errors);
                Err(errors)
            }
        }
    }
}

/// One value of a facet and how many entries hold it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacetValue {
    pub value: Value,
    pub count: i64,
}

/// The answer of `GET /data_entries/facets`: `{"<facet>": [{"value", "count"}, …], …}` in
/// the order the facets were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct FacetCounts(pub Vec<(String, Vec<FacetValue>)>);

impl Serialize for FacetCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (facet, values) in &self.0 {
            map.serialize_entry(facet, values)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::CursorKey;

    const KEY: CursorKey = CursorKey([3; 32]);

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|error| error.field.as_str()).collect()
    }

    #[test]
    fn key_discovery_takes_projects_a_type_and_a_prefix() {
        let a = "11111111-1111-1111-1111-111111111111";
        let query = KeysQuery::parse([
            ("project_id", a),
            ("char_source_type", "xps"),
            ("prefix", "instrument."),
        ])
        .unwrap();
        assert_eq!(query.entries.project_ids.len(), 1);
        assert_eq!(query.entries.data_type, Some(CharSourceType::Xps));
        assert_eq!(query.prefix.as_deref(), Some("instrument."));

        let errors = KeysQuery::parse([
            ("char_source_type", "tea"),
            ("project_id", "nope"),
            ("limit", "3"),
            ("prefix", "a\0"),
        ])
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            ["char_source_type", "project_id", "limit", "prefix"]
        );
        assert_eq!(errors[0].code, "invalid_enum_value");
        assert_eq!(errors[2].code, "unknown_parameter");
        assert!(KeysQuery::parse([("prefix", "a"), ("prefix", "b")]).is_err());
    }

    #[test]
    fn facets_are_columns_or_metadata_paths_each_once_and_the_rest_filters() {
        let query = FacetsQuery::parse(
            [
                ("facet", "char_source_type"),
                ("facet", r"metadata.instrument.pass\.energy"),
                ("facet", "char_source_type"),
                ("metadata.temperature[gt]", "700"),
                ("q", "GaN"),
            ],
            &KEY,
        )
        .unwrap();
        assert_eq!(
            query.facets,
            [
                (
                    "char_source_type".to_owned(),
                    Facet::Column(FacetColumn::CharSourceType)
                ),
                (
                    r"metadata.instrument.pass\.energy".to_owned(),
                    Facet::Metadata(vec!["instrument".into(), "pass.energy".into()])
                ),
            ]
        );
        assert_eq!(query.entries.words, ["GaN"]);
        assert_eq!(query.entries.metadata_conditions.len(), 1);
    }

    #[test]
    fn a_bad_missing_or_excess_facet_and_paging_parameters_are_refused() {
        let errors = FacetsQuery::parse([("status", "success")], &KEY).unwrap_err();
        assert_eq!(fields(&errors), ["facet"]);
        assert_eq!(errors[0].code, "missing_field");
        for bad in [
            "raw_name",
            "metadata.",
            "metadata.a..b",
            "metadata.a[gt]",
            "metadata",
        ] {
            let errors = FacetsQuery::parse([("facet", bad)], &KEY).unwrap_err();
            assert_eq!(fields(&errors), ["facet"], "{bad}");
        }
        let many: Vec<String> = (0..11).map(|i| format!("metadata.k{i}")).collect();
        let pairs = many.iter().map(|facet| ("facet", facet.as_str()));
        let errors = FacetsQuery::parse(pairs, &KEY).unwrap_err();
        assert_eq!(errors[0].code, "too_many_values");
        let errors = FacetsQuery::parse(
            [
                ("facet", "project_id"),
                ("limit", "5"),
                ("cursor", "x"),
                ("order_by", "last_updated"),
                ("data_ids", "nope"),
            ],
            &KEY,
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["limit", "cursor", "order_by", "data_ids"]);
        assert!(errors[..3].iter().all(|e| e.code == "unknown_parameter"));
    }

    #[test]
    fn facet_counts_serialise_as_one_object_in_request_order() {
        let counts = FacetCounts(vec![
            (
                "pipeline_status".into(),
                vec![FacetValue {
                    value: "success".into(),
                    count: 2,
                }],
            ),
            ("char_source_type".into(), vec![]),
        ]);
        assert_eq!(
            serde_json::to_string(&counts).unwrap(),
            r#"{"pipeline_status":[{"value":"success","count":2}],"char_source_type":[]}"#
        );
        let key = MetadataKey {
            path: "t".into(),
            count: 2,
            types: TypeCounts {
                number: 1,
                quantity: 1,
                ..TypeCounts::default()
            },
            units: Some(BTreeMap::from([("K".to_owned(), 1)])),
        };
        assert_eq!(
            serde_json::to_value(&key).unwrap(),
            serde_json::json!({"path": "t", "count": 2, "types": {"number": 1, "quantity": 1}, "units": {"K": 1}})
        );
    }
}
