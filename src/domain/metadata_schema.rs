//! Metadata schemas: a project's JSON Schema (2020-12 unless it names another draft) for the
//! metadata of one data type, or its `default` for the types without one of their own, and
//! checking a document against it.
//!
//! A schema is data from a user, so compiling one is guarded: nothing outside the schema is
//! ever fetched (every `$ref` to another document is refused, network and file system
//! alike), a schema larger, deeper or expanding to more nodes than `SchemaLimits` allows is
//! refused before it is compiled, and patterns run on the `regex` engine (linear time, no
//! backtracking) with a bounded compiled size. A document is bounded by `MetadataLimits`, so
//! what one check costs is bounded too.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use jsonschema::{
    Keyword, PatternOptions, Retrieve, Uri, ValidationError, ValidationOptions, Validator,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::field_error::ViolationAt;
use super::units::{self, Dimension};
use super::{CharSourceType, FieldError, SchemaMode};

mod incremental;

/// What a write's resulting document is known to be without looking at the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It validates, whatever the stored document is.
    Valid,
    /// It validates if the stored document validated under the same schema.
    ValidIfStoredValid,
    /// Only checking the resulting document itself can tell.
    Undecided,
}

/// The keyword that makes a property a quantity of a dimension: `{"x-dimension":
/// "temperature"}` accepts `{"value": 750, "unit": "degC"}` and refuses a unit of another
/// dimension or one labcat does not know.
pub const DIMENSION_KEYWORD: &str = "x-dimension";

/// Most violations one check lists; a document breaking more rules is not made clearer by
/// the rest.
pub const MAX_VIOLATIONS: usize = 100;

/// Longest message kept, in characters: the validator quotes the failing value, which may be
/// a large part of the document.
const MAX_MESSAGE_CHARS: usize = 300;

/// Which entries a schema is for: one data type, or the project's default for the types
/// that have no schema of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaTarget {
    Type(CharSourceType),
    Default,
}

impl SchemaTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaTarget::Type(data_type) => data_type.as_str(),
            SchemaTarget::Default => "default",
        }
    }

    /// The path segment of `/projects/{id}/schemas/{char_source_type}`.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text {
            "default" => Ok(SchemaTarget::Default),
            other => CharSourceType::from_str(other)
                .map(SchemaTarget::Type)
                .map_err(|()| {
                    let mut names = CharSourceType::NAMES.to_vec();
                    names.push("default");
                    FieldError {
                        allowed_values: Some(names.clone()),
                        ..FieldError::new(
                            "char_source_type",
                            "invalid_enum_value",
                            format!(
                                "'{other}' is not a data type; allowed values: {}",
                                names.join(", ")
                            ),
                        )
                    }
                }),
        }
    }
}

impl fmt::Display for SchemaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Configurable bounds on a schema (`[limits.schema]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SchemaLimits {
    /// Size of the schema as compact JSON, in bytes.
    pub max_bytes: usize,
    /// Nesting depth of objects and arrays in the schema; the schema itself is depth 1.
    pub max_depth: usize,
    /// Nodes the schema has with every local `$ref` written out where it is used: a small
    /// schema whose definitions each refer to the next several times expands exponentially,
    /// and checking a document walks the expansion.
    pub max_expanded_nodes: usize,
    /// Compiled size of one `pattern` (or `patternProperties` key), in bytes, as the
    /// `regex` crate measures it.
    pub max_pattern_bytes: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 32,
            max_expanded_nodes: 100_000,
            max_pattern_bytes: 1024 * 1024,
        }
    }
}

/// One way a document breaks a schema, as `metadata_errors` and a refused write list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaViolation {
    /// JSON Pointer into the metadata document (`""` is the document itself).
    pub path: String,
    pub message: String,
    /// The schema keyword that failed (`required`, `minimum`, `x-dimension`, ...).
    pub keyword: String,
}

impl SchemaViolation {
    /// The violation as an item of a 422's `errors`.
    pub fn to_field_error(&self) -> FieldError {
        FieldError {
            violation: Some(Box::new(ViolationAt {
                path: self.path.clone(),
                keyword: self.keyword.clone(),
            })),
            ..FieldError::new(
                format!("metadata{}", self.path),
                "schema_violation",
                self.message.clone(),
            )
        }
    }
}

/// A PUT body: `{"mode": "enforce" | "report", "schema": <JSON Schema>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    pub mode: SchemaMode,
    pub schema: Value,
}

impl SchemaChange {
    /// `mode` is required for a PUT; a dry run (`require_mode` false) may leave it out.
    pub fn from_json(
        body: Map<String, Value>,
        require_mode: bool,
    ) -> Result<Self, Vec<FieldError>> {
        let mut mode = None;
        let mut schema = None;
        let mut errors = Vec::new();
        for (key, value) in body {
            match key.as_str() {
                "mode" => match value.as_str().map(SchemaMode::from_str) {
                    Some(Ok(parsed)) => mode = Some(parsed),
                    _ => errors.push(FieldError {
                        allowed_values: Some(SchemaMode::NAMES.to_vec()),
                        ..FieldError::new(
                            "mode",
                            "invalid_enum_value",
                            format!(
                                "{value} is not a valid 'mode'; allowed values: {}",
                                SchemaMode::NAMES.join(", ")
                            ),
                        )
                    }),
                },
                "schema" => match value {
                    Value::Object(_) | Value::Bool(_) => schema = Some(value),
                    _ => errors.push(FieldError::invalid_type(
                        "schema",
                        "a JSON Schema (an object or a boolean)",
                    )),
                },
                other => errors.push(FieldError::unknown_field(other, &["mode", "schema"])),
            }
        }
        if schema.is_none() && errors.iter().all(|e| e.field != "schema") {
            errors.push(FieldError::required("schema"));
        }
        if require_mode && mode.is_none() && errors.iter().all(|e| e.field != "mode") {
            errors.push(FieldError::required("mode"));
        }
        match (schema, errors.is_empty()) {
            (Some(schema), true) => Ok(Self {
                mode: mode.unwrap_or(SchemaMode::Enforce),
                schema,
            }),
            _ => Err(errors),
        }
    }
}

/// A schema ready to check documents with.
pub struct CompiledSchema {
    validator: Validator,
    /// The schema taken apart per level, when a merge's result can be decided from the
    /// patch (`incremental`).
    parts: Option<incremental::Level>,
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompiledSchema")
    }
}

impl CompiledSchema {
    /// Compiles `schema`, or says (as a 422 item on `schema`) why it cannot be used.
    pub fn compile(schema: &Value, limits: &SchemaLimits) -> Result<Self, FieldError> {
        check_shape(schema, limits)?;
        let options = validation_options(limits);
        let validator = options.build(schema).map_err(|error| {
            FieldError::new(
                "schema",
                "invalid_schema",
                format!("the schema cannot be used: {error}"),
            )
        })?;
        let parts = incremental::Level::of_schema(schema, &options);
        Ok(Self { validator, parts })
    }

    /// What can be said of the document an RFC 7396 merge of `patch` into the stored one
    /// gives (`None`: the document stays as it is), without the stored document.
    pub fn verdict_on_merge(&self, patch: Option<&Value>) -> Verdict {
        match (patch, &self.parts) {
            (None, _) => Verdict::ValidIfStoredValid,
            (Some(patch), Some(parts)) if parts.keeps_valid(patch) => Verdict::ValidIfStoredValid,
            _ => Verdict::Undecided,
        }
    }

    /// What can be said of `replacement` as the whole new document.
    pub fn verdict_on_replacement(&self, replacement: &Value) -> Verdict {
        if self.validator.is_valid(replacement) {
            Verdict::Valid
        } else {
            Verdict::Undecided
        }
    }

    /// Every way `document` breaks the schema (at most `MAX_VIOLATIONS`); empty when it
    /// validates.
    pub fn check(&self, document: &Value) -> Vec<SchemaViolation> {
        if self.validator.is_valid(document) {
            return Vec::new();
        }
        self.validator
            .iter_errors(document)
            .take(MAX_VIOLATIONS)
            .map(|error| SchemaViolation {
                path: error.instance_path().as_str().to_owned(),
                message: shortened(error.to_string()),
                keyword: keyword_of(error.schema_path().as_str()),
            })
            .collect()
    }
}

/// How every schema and every part of one is compiled: nothing fetched, patterns bounded,
/// `x-dimension` known.
fn validation_options(limits: &SchemaLimits) -> ValidationOptions<'static> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_retriever(NothingOutside)
        .with_pattern_options(
            PatternOptions::regex()
                .size_limit(limits.max_pattern_bytes)
                .dfa_size_limit(limits.max_pattern_bytes),
        )
        .with_keyword(DIMENSION_KEYWORD, dimension_keyword)
}

fn shortened(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// The last segment of a schema location (`/properties/t/minimum` → `minimum`), unescaped.
fn keyword_of(schema_path: &str) -> String {
    let last = schema_path.rsplit('/').next().unwrap_or_default();
    last.replace("~1", "/").replace("~0", "~")
}

/// Refuses every document outside the schema: labcat fetches nothing a user's schema names.
struct NothingOutside;

impl Retrieve for NothingOutside {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "'{}' is outside this schema, and labcat fetches no other schema (a $ref may only \
             point into the schema itself)",
            uri.as_str()
        )
        .into())
    }
}

/// The drafts a schema may name in `$schema`; any other meta-schema would have to be
/// fetched, and nothing is.
const KNOWN_DIALECTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema",
    "http://json-schema.org/draft-06/schema",
    "http://json-schema.org/draft-04/schema",
];

/// The size, depth, dialect and expansion checks, before the schema reaches the compiler.
fn check_shape(schema: &Value, limits: &SchemaLimits) -> Result<(), FieldError> {
    let refuse =
        |code: &'static str, message: String| Err(FieldError::new("schema", code, message));
    if let Some(dialect) = schema.get("$schema") {
        let known = dialect.as_str().is_some_and(|uri| {
            let uri = uri.strip_suffix('#').unwrap_or(uri);
            KNOWN_DIALECTS.contains(&uri)
        });
        if !known {
            return refuse(
                "unknown_schema_dialect",
                format!(
                    "'$schema' is {dialect}; labcat fetches no meta-schema, so it must name one \
                     of the drafts it knows: {}",
                    KNOWN_DIALECTS.join(", ")
                ),
            );
        }
    }
    let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |text| text.len());
    if bytes > limits.max_bytes {
        return refuse(
            "schema_too_large",
            format!(
                "the schema is {bytes} bytes as compact JSON; the limit is {}",
                limits.max_bytes
            ),
        );
    }
    if depth(schema) > limits.max_depth {
        return refuse(
            "schema_too_deep",
            format!(
                "the schema is nested deeper than {} levels",
                limits.max_depth
            ),
        );
    }
    let mut expansion = Expansion {
        root: schema,
        limit: limits.max_expanded_nodes,
        done: HashMap::new(),
        entered: HashMap::new(),
        descents: 0,
    };
    let nodes = expansion.node(schema)?;
    if nodes > limits.max_expanded_nodes {
        return refuse(
            "schema_too_complex",
            format!(
                "with its $refs written out the schema has more than {} nodes; checking a \
                 document would walk every one",
                limits.max_expanded_nodes
            ),
        );
    }
    Ok(())
}

/// Nesting depth of objects and arrays; a scalar is 0, `{}` is 1.
fn depth(value: &Value) -> usize {
    // Iterative, so a hostile schema cannot exhaust the stack before it is measured.
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(members) => Box::new(members.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        deepest = deepest.max(level);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// Keywords whose subschemas apply to a part of the instance (a member, an item, a key):
/// recursion through them ends where the document ends.
const DESCENDING: &[&str] = &[
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "items",
    "prefixItems",
    "additionalItems",
    "unevaluatedItems",
    "contains",
];

/// Counts the nodes of a schema with its local `$ref`s written out, stopping past `limit`.
/// A definition is counted once however often it is used (each use adds its count); a
/// definition that reaches itself again without moving into the document is a loop that
/// would never end, and is refused.
struct Expansion<'a> {
    root: &'a Value,
    limit: usize,
    /// Expanded size of each definition already counted, by JSON Pointer.
    done: HashMap<&'a str, usize>,
    /// Definitions being counted, with the descents made when each was entered.
    entered: HashMap<&'a str, usize>,
    /// How many descending keywords lead to the node being counted.
    descents: usize,
}

impl<'a> Expansion<'a> {
    fn node(&mut self, value: &'a Value) -> Result<usize, FieldError> {
        let mut total: usize = 1;
        match value {
            Value::Object(members) => {
                for (key, child) in members {
                    let count = match (key.as_str(), child) {
                        ("$ref" | "$dynamicRef", Value::String(target)) => {
                            self.reference(target)?
                        }
                        (keyword, child) if DESCENDING.contains(&keyword) => {
                            self.descents += 1;
                            let count = self.node(child);
                            self.descents -= 1;
                            count?
                        }
                        (_, child) => self.node(child)?,
                    };
                    total = total.saturating_add(count);
                    if total > self.limit {
                        break;
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    total = total.saturating_add(self.node(item)?);
                    if total > self.limit {
                        break;
                    }
                }
            }
            _ => {}
        }
        Ok(total)
    }

    fn reference(&mut self, target: &'a str) -> Result<usize, FieldError> {
        // Only pointers into this document are expanded: anchors count as one node, and
        // other documents are refused by the compiler.
        let Some(pointer) = target.strip_prefix('#') else {
            return Ok(1);
        };
        if let Some(&count) = self.done.get(pointer) {
            return Ok(count);
        }
        if let Some(&at) = self.entered.get(pointer) {
            if at == self.descents {
                return Err(FieldError::new(
                    "schema",
                    "schema_loops",
                    format!(
                        "the schema's $ref '{target}' leads back to itself without moving into \
                         the document, so checking would never end"
                    ),
                ));
            }
            return Ok(1);
        }
        let Some(definition) = self.root.pointer(pointer) else {
            return Ok(1);
        };
        self.entered.insert(pointer, self.descents);
        let count = self.node(definition);
        self.entered.remove(pointer);
        let count = count?;
        self.done.insert(pointer, count);
        Ok(count)
    }
}

/// `x-dimension: "<dimension>"` at compile time: the dimension must be one labcat knows.
fn dimension_keyword<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _location: jsonschema::paths::Location,
) -> Result<Box<dyn Keyword>, ValidationError<'a>> {
    let dimension = value.as_str().and_then(|name| {
        Dimension::ALL
            .iter()
            .copied()
            .find(|dimension| dimension.name() == name)
    });
    match dimension {
        Some(dimension) => Ok(Box::new(QuantityOf(dimension))),
        None => {
            let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
            Err(ValidationError::custom(format!(
                "'{DIMENSION_KEYWORD}' must name a dimension: one of {}",
                names.join(", ")
            )))
        }
    }
}

/// The value must be a quantity (`{"value": <number>, "unit": "<symbol>"}`) whose unit is
/// one of this dimension's.
struct QuantityOf(Dimension);

impl QuantityOf {
    fn problem(&self, instance: &Value) -> Option<String> {
        let dimension = self.0.name();
        let quantity = instance.as_object().and_then(|members| {
            let value = members.get("value")?.as_f64()?;
            let unit = members.get("unit")?.as_str()?;
            Some((value, unit))
        });
        let Some((_, unit)) = quantity else {
            return Some(format!(
                "{instance} is not a quantity of {dimension}: expected {{\"value\": <number>, \
                 \"unit\": \"<unit>\"}}, e.g. {{\"value\": 1, \"unit\": \"{}\"}}",
                self.0.si_symbol()
            ));
        };
        match units::lookup(unit) {
            None => Some(format!(
                "unknown unit '{unit}': not a unit of {dimension} labcat knows (e.g. '{}')",
                self.0.si_symbol()
            )),
            Some(known) if known.dimension != self.0 => Some(format!(
                "the unit '{unit}' is a unit of {}, not of {dimension}",
                known.dimension.name()
            )),
            Some(_) => None,
        }
    }
}

impl Keyword for QuantityOf {
    fn validate<'i>(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.problem(instance) {
            None => Ok(()),
            Some(message) => Err(ValidationError::custom(message)),
        }
    }

    fn is_valid(&self, instance: &Value) -> bool {
        self.problem(instance).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(schema: Value) -> Result<CompiledSchema, FieldError> {
        CompiledSchema::compile(&schema, &SchemaLimits::default())
    }

    #[test]
    fn every_violation_names_its_pointer_and_keyword() {
        let schema = compile(json!({
            "type": "object",
            "required": ["sample"],
            "properties": {"growth": {"properties": {"t": {"type": "number", "minimum": 100}}}}
        }))
        .unwrap();
        assert!(
            schema
                .check(&json!({"sample": "a", "growth": {"t": 200}}))
                .is_empty()
        );
        let mut violations = schema.check(&json!({"growth": {"t": 5}}));
        violations.sort_by(|a, b| a.keyword.cmp(&b.keyword));
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert_eq!(violations[0].keyword, "minimum");
        assert_eq!(violations[0].path, "/growth/t");
        assert_eq!(violations[1].keyword, "required");
        assert_eq!(violations[1].path, "");
    }

    #[test]
    fn a_quantity_must_have_a_unit_of_its_dimension() {
        let schema = compile(json!({
            "properties": {"temperature": {"x-dimension": "temperature"}}
        }))
        .unwrap();
        let ok = json!({"temperature": {"value": 750, "unit": "degC"}});
        assert!(schema.check(&ok).is_empty());
        let wrong = schema.check(&json!({"temperature": {"value": 1, "unit": "mbar"}}));
        assert_eq!(wrong.len(), 1);
        assert!(wrong[0].message.contains("'mbar'"), "{}", wrong[0].message);
        assert!(
            wrong[0].message.contains("pressure"),
            "{}",
            wrong[0].message
        );
        assert_eq!(wrong[0].keyword, DIMENSION_KEYWORD);
        let unknown = schema.check(&json!({"temperature": {"value": 1, "unit": "kelvins"}}));
        assert!(
            unknown[0].message.contains("'kelvins'"),
            "{}",
            unknown[0].message
        );
        let bare = schema.check(&json!({"temperature": 750}));
        assert_eq!(bare.len(), 1);
        assert!(compile(json!({"x-dimension": "flavour"})).is_err());
    }

    #[test]
    fn refs_outside_the_schema_are_refused_and_inside_ones_work() {
        let error = compile(json!({"$ref": "http://127.0.0.1:9/other.json"})).unwrap_err();
        assert_eq!(error.code, "invalid_schema");
        assert!(compile(json!({"$ref": "file:///etc/passwd"})).is_err());
        let local = compile(json!({
            "$defs": {"t": {"type": "number"}},
            "properties": {"a": {"$ref": "#/$defs/t"}}
        }))
        .unwrap();
        assert_eq!(local.check(&json!({"a": "x"})).len(), 1);
    }

    #[test]
    fn bombs_are_refused_before_compiling() {
        let mut deep = json!({"type": "object"});
        for _ in 0..40 {
            deep = json!({"properties": {"a": deep}});
        }
        assert_eq!(compile(deep).unwrap_err().code, "schema_too_deep");

        // Each definition uses the next ten times: 10^8 nodes from a few hundred bytes.
        let mut defs = Map::new();
        for level in 0..8 {
            let next = json!({"$ref": format!("#/$defs/d{}", level + 1)});
            defs.insert(format!("d{level}"), json!({"anyOf": vec![next; 10]}));
        }
        defs.insert("d8".into(), json!({"type": "string"}));
        let bomb = json!({"$defs": defs, "$ref": "#/$defs/d0"});
        assert_eq!(compile(bomb).unwrap_err().code, "schema_too_complex");

        let looping = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
                             "$ref": "#/$defs/a"});
        assert_eq!(compile(looping).unwrap_err().code, "schema_loops");
        // Recursion that moves into the document is a tree schema, and fine.
        let tree = compile(json!({"properties": {"child": {"$ref": "#"}}})).unwrap();
        assert!(tree.check(&json!({"child": {"child": {}}})).is_empty());

        let huge_pattern = json!({"pattern": "(a{1000}){1000}"});
        assert_eq!(compile(huge_pattern).unwrap_err().code, "invalid_schema");
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let message = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let short = shortened(message);
        assert_eq!(short.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(short.ends_with('…'));
        assert_eq!(shortened("short".into()), "short");
    }

    #[test]
    fn a_put_needs_a_mode_and_a_schema() {
        let Value::Object(body) = json!({"schema": {}}) else {
            unreachable!()
        };
        let errors = SchemaChange::from_json(body.clone(), true).unwrap_err();
        assert_eq!(errors[0].field, "mode");
        assert_eq!(
            SchemaChange::from_json(body, false).unwrap().mode,
            SchemaMode::Enforce
        );
        let Value::Object(body) = json!({"mode": "loose", "schema": 3, "x": 1}) else {
            unreachable!()
        };
        assert_eq!(SchemaChange::from_json(body, true).unwrap_err().len(), 3);
    }
}
