//! Deciding from a merge patch alone whether the merged document validates, when the stored
//! document did.
//!
//! A schema level made only of `type: "object"`, `properties`, `required`,
//! `additionalProperties` and annotations constrains each member of an object on its own,
//! plus which members must be there. An RFC 7396 merge changes only the members its patch
//! names. So if the stored document validated, the merged one does when every member the
//! patch names is fine:
//! - `null` deletes the member: fine unless it is required;
//! - a value that is not an object replaces the member: fine if it validates against the
//!   member's subschema (`properties[k]`, else `additionalProperties`);
//! - an object is merged into the member: fine if the member's subschema accepts anything,
//!   or is such a level itself and the patch object is fine there. Where the stored member may
//!   be missing (or not an object, which the merge replaces by the patch object without its
//!   nulls), every required member of that level must be in the patch object and not `null`.
//!
//! Anything else at a level the patch reaches (`allOf`, `not`, `patternProperties`,
//! `minProperties`, `x-dimension`, …) leaves the question to the full check, and so does a
//! schema with any `$ref` or `$id` (a subschema compiled alone would not see what they point
//! at) or another draft than 2020-12 (whose formats a part compiled alone might treat
//! differently). The verdict only ever says "valid" when checking the merged document would;
//! when it says nothing, the merged document is checked as always.

use std::collections::{HashMap, HashSet};

use jsonschema::{ValidationOptions, Validator};
use serde_json::{Map, Value};

/// Keywords that say nothing about whether a document validates.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$comment",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords harmless at the root of a schema without references.
const ROOT_ONLY: &[&str] = &["$schema", "$defs", "definitions"];

/// Keywords that name or point at a part of a schema: a part compiled alone would lose what
/// they refer to.
const IDENTIFYING: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$recursiveAnchor",
    "$vocabulary",
];

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// One object level of a schema, taken apart.
pub(super) struct Level {
    /// `type: "object"`: a valid instance of this level is an object.
    object_typed: bool,
    required: HashSet<String>,
    properties: HashMap<String, Member>,
    /// For members not in `properties` (absent: anything).
    additional: Member,
}

/// What a level says of one member.
enum Member {
    /// `true`, `{}` or annotations only.
    Any,
    /// `false`.
    Never,
    /// A subschema: its compiled self, and its parts when it is a level too.
    Schema {
        validator: Box<Validator>,
        level: Option<Box<Level>>,
    },
}

impl Level {
    /// The schema's root taken apart, or `None` when a merge's result cannot be decided from
    /// the patch under it.
    pub(super) fn of_schema(schema: &Value, options: &ValidationOptions<'static>) -> Option<Self> {
        if mentions_identifiers(schema) {
            return None;
        }
        if let Some(dialect) = schema.get("$schema") {
            let dialect = dialect.as_str()?;
            if dialect.strip_suffix('#').unwrap_or(dialect) != DRAFT_2020_12 {
                return None;
            }
        }
        Self::of(schema, true, options)
    }

    fn of(schema: &Value, root: bool, options: &ValidationOptions<'static>) -> Option<Self> {
        let Value::Object(keywords) = schema else {
            return None;
        };
        let mut level = Level {
            object_typed: false,
            required: HashSet::new(),
            properties: HashMap::new(),
            additional: Member::Any,
        };
        for (keyword, value) in keywords {
            match keyword.as_str() {
                "type" if value.as_str() == Some("object") => level.object_typed = true,
                "required" => {
                    for name in value.as_array()? {
                        level.required.insert(name.as_str()?.to_owned());
                    }
                }
                "properties" => {
                    for (name, subschema) in value.as_object()? {
                        level
                            .properties
                            .insert(name.clone(), Member::of(subschema, options)?);
                    }
                }
                "additionalProperties" => level.additional = Member::of(value, options)?,
                other if ANNOTATIONS.contains(&other) => {}
                other if root && ROOT_ONLY.contains(&other) => {}
                _ => return None,
            }
        }
        Some(level)
    }

    /// Whether merging `patch` into a document valid under this (root) level gives a valid
    /// one.
    pub(super) fn keeps_valid(&self, patch: &Value) -> bool {
        // The stored document is an object (metadata always is) and validated.
        patch
            .as_object()
            .is_some_and(|patch| self.accepts(patch, true))
    }

    /// Whether merging `patch` into a member valid under this level gives a valid member:
    /// `present` when that member is known to be a valid object, else it may also be missing
    /// or not an object.
    fn accepts(&self, patch: &Map<String, Value>, present: bool) -> bool {
        if !present
            && !self
                .required
                .iter()
                .all(|name| patch.get(name).is_some_and(|value| !value.is_null()))
        {
            return false;
        }
        patch.iter().all(|(name, value)| {
            if value.is_null() {
                return !self.required.contains(name);
            }
            let member = self.properties.get(name).unwrap_or(&self.additional);
            match (member, value) {
                (Member::Any, _) => true,
                (Member::Never, _) => false,
                (
                    Member::Schema {
                        level: Some(level), ..
                    },
                    Value::Object(nested),
                ) => {
                    // Valid and required here, and of type object there: the stored member
                    // is a valid object.
                    let nested_present =
                        present && self.required.contains(name) && level.object_typed;
                    level.accepts(nested, nested_present)
                }
                (Member::Schema { level: None, .. }, Value::Object(_)) => false,
                (Member::Schema { validator, .. }, value) => validator.is_valid(value),
            }
        })
    }
}

impl Member {
    fn of(schema: &Value, options: &ValidationOptions<'static>) -> Option<Self> {
        match schema {
            Value::Bool(true) => Some(Member::Any),
            Value::Bool(false) => Some(Member::Never),
            Value::Object(keywords)
                if keywords
                    .keys()
                    .all(|keyword| ANNOTATIONS.contains(&keyword.as_str())) =>
            {
                Some(Member::Any)
            }
            Value::Object(_) => Some(Member::Schema {
                validator: Box::new(options.build(schema).ok()?),
                level: Level::of(schema, false, options).map(Box::new),
            }),
            _ => None,
        }
    }
}

/// Whether any object in the schema has an identifying keyword as a key (property names
/// included: being cautious costs only the shortcut).
fn mentions_identifiers(schema: &Value) -> bool {
    let mut stack = vec![schema];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(members) => {
                if members
                    .keys()
                    .any(|key| IDENTIFYING.contains(&key.as_str()))
                {
                    return true;
                }
                stack.extend(members.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::super::{CompiledSchema, SchemaLimits, Verdict};
    use crate::domain::metadata::merged;

    fn compile(schema: Value) -> CompiledSchema {
        CompiledSchema::compile(&schema, &SchemaLimits::default()).unwrap()
    }

    use super::*;

    /// The schema `bench/run --schema` enforces.
    fn bench_schema() -> Value {
        let mut properties = json!({
            "operator": {"type": "string", "maxLength": 64},
            "run": {"type": "integer", "minimum": 0},
            "counter": {"type": "integer", "minimum": 0},
            "stage": {"type": "object", "required": ["step"],
                      "properties": {"step": {"type": "integer", "minimum": 0, "maximum": 6}}}
        });
        for i in 0..26 {
            properties[format!("p{i}")] = json!({"type": "number", "minimum": 0});
        }
        json!({"type": "object", "required": ["operator", "run"], "properties": properties})
    }

    fn nested_schema() -> Value {
        json!({
            "type": "object",
            "required": ["a"],
            "properties": {
                "a": {
                    "type": "object",
                    "required": ["b"],
                    "properties": {
                        "b": {"type": "integer", "minimum": 0},
                        "c": {"type": "object", "required": ["d"],
                              "properties": {"d": {"type": "string"}},
                              "additionalProperties": false}
                    }
                },
                "e": {"type": "string", "title": "a string"},
                "o": {"required": ["x"], "properties": {"x": {"type": "integer"}}}
            },
            "additionalProperties": {"type": "number"}
        })
    }

    fn closed_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "closed",
            "properties": {
                "t": {"x-dimension": "temperature"},
                "n": {"type": ["number", "null"]},
                "l": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
                "q": {"type": "object", "properties": {"x": true, "d": false, "b": {}},
                      "additionalProperties": {"type": "object",
                                               "properties": {"x": {"type": "boolean"}}}}
            },
            "additionalProperties": false
        })
    }

    #[test]
    fn the_benchmark_patch_is_decided_from_the_patch() {
        let schema = compile(bench_schema());
        let patch = json!({"counter": 7, "stage": {"step": 3}});
        assert_eq!(
            schema.verdict_on_merge(Some(&patch)),
            Verdict::ValidIfStoredValid
        );
        // Leaving the document as it is, too.
        assert_eq!(schema.verdict_on_merge(None), Verdict::ValidIfStoredValid);
        // A bad value, and a stage without its required step (the stored one may lack a
        // stage), are left to the full check.
        for patch in [
            json!({"counter": -1}),
            json!({"stage": {}}),
            json!({"stage": {"step": null}}),
            json!({"stage": 3}),
            json!({"operator": null}),
            json!([1]),
        ] {
            assert_eq!(
                schema.verdict_on_merge(Some(&patch)),
                Verdict::Undecided,
                "{patch}"
            );
        }
        // Deleting an optional member is fine.
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"p3": null, "unknown": {"x": [1]}}))),
            Verdict::ValidIfStoredValid
        );
    }

    #[test]
    fn a_nested_member_required_where_its_parent_is_may_be_left_out() {
        let schema = compile(nested_schema());
        // `a` is required at the root and an object: the stored `a` has its `b`.
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"a": {"c": {"d": "x"}}}))),
            Verdict::ValidIfStoredValid
        );
        // `c` is optional: the stored document may lack it, so `d` must come with it.
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"a": {"c": {}}}))),
            Verdict::Undecided
        );
        // `o` has no type: the stored `o` may be a number, which the merge replaces.
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"o": {"y": 1}}))),
            Verdict::Undecided
        );
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"o": {"x": 1}, "z": 2.5}))),
            Verdict::ValidIfStoredValid
        );
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"z": "text"}))),
            Verdict::Undecided
        );
    }

    #[test]
    fn what_a_level_cannot_decide_goes_to_the_full_check() {
        let patch = json!({"a": 1});
        for schema in [
            json!({"properties": {"a": {"type": "integer"}}, "maxProperties": 3}),
            json!({"properties": {"a": {"type": "integer"}}, "not": {"required": ["b"]}}),
            json!({"patternProperties": {"^a": {"type": "integer"}}}),
            json!({"$defs": {"i": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/i"}}}),
            json!({"$id": "https://example.org/s", "properties": {"a": {"type": "integer"}}}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#",
                   "properties": {"a": {"type": "integer"}}}),
            json!({"type": ["object"], "properties": {"a": {"type": "integer"}}}),
            json!({"dependentRequired": {"a": ["b"]}}),
        ] {
            let compiled = compile(schema.clone());
            assert_eq!(
                compiled.verdict_on_merge(Some(&patch)),
                Verdict::Undecided,
                "{schema}"
            );
        }
        // A nested level that is not decomposable decides only values that replace it.
        let schema = compile(json!({"properties": {"a": {"type": "object", "minProperties": 1}}}));
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"a": {"x": 1}}))),
            Verdict::Undecided
        );
        assert_eq!(
            schema.verdict_on_merge(Some(&json!({"a": null}))),
            Verdict::ValidIfStoredValid
        );
        // A member that may not exist may be deleted, not set.
        let closed = compile(closed_schema());
        assert_eq!(
            closed.verdict_on_merge(Some(&json!({"zz": null, "q": {"d": null}}))),
            Verdict::ValidIfStoredValid
        );
        assert_eq!(
            closed.verdict_on_merge(Some(&json!({"zz": 1}))),
            Verdict::Undecided
        );
        assert_eq!(
            closed.verdict_on_merge(Some(&json!({"q": {"d": 1}}))),
            Verdict::Undecided
        );
    }

    #[test]
    fn a_replacement_is_valid_whatever_was_stored_when_it_validates() {
        let schema = compile(bench_schema());
        assert_eq!(
            schema.verdict_on_replacement(&json!({"operator": "o", "run": 1})),
            Verdict::Valid
        );
        assert_eq!(
            schema.verdict_on_replacement(&json!({"operator": "o"})),
            Verdict::Undecided
        );
    }

    const KEYS: &[&str] = &[
        "a", "b", "c", "d", "e", "o", "x", "z", "t", "n", "l", "q", "operator", "run", "counter",
        "stage", "step", "p0",
    ];

    fn random_value(rng: &mut StdRng, depth: u32, nulls: bool) -> Value {
        let choices = if depth >= 3 { 9 } else { 11 };
        match rng.random_range(0..choices) {
            0 if nulls => Value::Null,
            0 | 1 => json!(rng.random_range(-2..8)),
            2 => json!(f64::from(rng.random_range(-4..16)) / 2.0),
            3 => {
                let text = ["x", "op1", "", "degC"][rng.random_range(0..4)];
                json!(text)
            }
            4 => json!(rng.random_bool(0.5)),
            5 => {
                let unit = ["K", "degC", "mbar"][rng.random_range(0..3)];
                json!({"value": 1, "unit": unit})
            }
            6 => json!(
                (0..rng.random_range(0..5))
                    .map(|_| rng.random_range(-1..3))
                    .collect::<Vec<_>>()
            ),
            7 => Value::Null,
            8 => json!(rng.random_range(0..7)),
            _ => random_object(rng, depth + 1, nulls),
        }
    }

    fn random_object(rng: &mut StdRng, depth: u32, nulls: bool) -> Value {
        let mut object = Map::new();
        for _ in 0..rng.random_range(0..4) {
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let value = random_value(rng, depth, nulls);
            if nulls || !value.is_null() {
                object.insert(key.to_owned(), value);
            }
        }
        Value::Object(object)
    }

    /// Walks through valid documents by random merges: wherever the verdict says the merge
    /// keeps the document valid, checking the merged document must agree.
    fn agrees_with_the_full_check(schema: Value, start: Value, seed: u64) {
        let compiled = compile(schema.clone());
        assert!(compiled.check(&start).is_empty(), "{start}");
        let mut rng = StdRng::seed_from_u64(seed);
        let mut stored = start.clone();
        let (mut decided, mut valid) = (0, 0);
        for _ in 0..20_000 {
            let patch = random_object(&mut rng, 1, true);
            let result = merged(&stored, &patch);
            let result_valid = compiled.check(&result).is_empty();
            let verdict = compiled.verdict_on_merge(Some(&patch));
            if verdict == Verdict::ValidIfStoredValid {
                decided += 1;
                assert!(
                    result_valid,
                    "schema {schema}\nstored {stored}\npatch {patch}\nmerged {result}\n{:?}",
                    compiled.check(&result)
                );
            }
            if result_valid {
                valid += 1;
                stored = result;
            }
            if rng.random_range(0..50) == 0 {
                stored = start.clone();
            }
        }
        // Not vacuous: many merges are decided, and many were valid to begin with.
        assert!(
            decided > 500,
            "{decided} decided of {valid} valid, {schema}"
        );
    }

    #[test]
    fn a_merge_decided_valid_from_the_patch_validates_when_checked_in_full() {
        agrees_with_the_full_check(
            bench_schema(),
            json!({"operator": "op1", "run": 3, "stage": {"step": 2}}),
            1,
        );
        agrees_with_the_full_check(nested_schema(), json!({"a": {"b": 1}}), 2);
        agrees_with_the_full_check(closed_schema(), json!({}), 3);
        agrees_with_the_full_check(
            json!({"type": "object", "required": ["stage"],
                   "properties": {"stage": {"type": "object", "required": ["step", "x"],
                                            "properties": {"step": {"type": "integer"},
                                                           "x": {"type": "object"}}}},
                   "additionalProperties": {"type": "object", "required": ["b"]}}),
            json!({"stage": {"step": 1, "x": {}}}),
            4,
        );
    }
}
