//! Metadata filters in SQL, shaped so a row's document is read at most twice however many
//! filters a request carries.

use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::metadata_query::{Condition, IndexedPaths, Operand};

/// Pushes ` AND …` requiring the metadata to contain, for every filter, one of its documents.
///
/// The first filter stays in the statement, where the GIN index on `metadata` answers it. The
/// rest go to `metadata_contains_all` in one call, which fetches and decompresses the document
/// once for all of them: each `metadata @> $n` in a WHERE clause reads it again, and 32
/// filters on an entry holding a large array made a search read it 64 times per row.
pub fn push(sql: &mut QueryBuilder<Postgres>, filters: impl IntoIterator<Item = Vec<Value>>) {
    let mut filters = filters.into_iter();
    let Some(first) = filters.next() else {
        return;
    };
    sql.push(" AND (");
    for (i, document) in first.into_iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("metadata @> ").push_bind(document);
    }
    sql.push(")");
    let rest: Vec<Value> = filters.map(Value::Array).collect();
    if !rest.is_empty() {
        sql.push(" AND metadata_contains_all(metadata, ")
            .push_bind(Value::Array(rest))
            .push(")");
    }
}

/// Pushes ` AND …` requiring every condition. Numbers, instants and quantities are looked
/// up in `metadata_values` (an index answers a range there), as is existence; strings and
/// booleans are tested on the document, all of them in one SQL/JSON path predicate so it is
/// read once. Values go in as bound parameters or path variables; only keys and
/// `prefix`/`contains` patterns are written into the path text, escaped as its literals.
pub fn push_conditions(
    sql: &mut QueryBuilder<Postgres>,
    conditions: &[(Vec<String>, Condition)],
    indexed_paths: &IndexedPaths,
) {
    let mut variables = serde_json::Map::new();
    let mut on_document = Vec::new();
    for (path, condition) in conditions {
        match condition {
            Condition::Exists(exists) => {
                sql.push(if *exists { " AND " } else { " AND NOT " });
                push_fact(sql, path, indexed_paths, |sql| {
                    sql.push("fact.kind = 'present'");
                });
            }
            Condition::Prefix(_) | Condition::Contains(_) => {
                on_document.push(document_test(path, condition, &mut variables))
            }
            Condition::In(operands) => {
                let (facts, others): (Vec<&Operand>, Vec<&Operand>) =
                    operands.iter().partition(|operand| indexed(operand));
                let any_of = |variables: &mut serde_json::Map<String, Value>| {
                    let any = others
                        .iter()
                        .map(|operand| format!("@ == {}", bind(operand, variables)))
                        .collect::<Vec<_>>()
                        .join(" || ");
                    format!("exists({} ? ({any}))", at(path))
                };
                if facts.is_empty() {
                    on_document.push(any_of(&mut variables));
                    continue;
                }
                sql.push(" AND (");
                push_fact(sql, path, indexed_paths, |sql| push_any_of(sql, &facts));
                if !others.is_empty() {
                    // Its own predicate: an `in` mixing numbers and strings is rare.
                    let mut own = serde_json::Map::new();
                    let test = any_of(&mut own);
                    push_document(sql, " OR ", &[test], own);
                }
                sql.push(")");
            }
            Condition::Eq(operand)
            | Condition::Ne(operand)
            | Condition::Gt(operand)
            | Condition::Gte(operand)
            | Condition::Lt(operand)
            | Condition::Lte(operand) => {
                if indexed(operand) {
                    sql.push(" AND ");
                    push_fact(sql, path, indexed_paths, |sql| {
                        push_comparison(sql, comparator(condition), operand)
                    });
                } else {
                    on_document.push(document_test(path, condition, &mut variables));
                }
            }
        }
    }
    if !on_document.is_empty() {
        push_document(sql, " AND ", &on_document, variables);
    }
}

/// Values compared through `metadata_values` rather than on the document.
fn indexed(operand: &Operand) -> bool {
    matches!(
        operand,
        Operand::Number(_) | Operand::Instant(_) | Operand::Quantity { .. }
    )
}

fn comparator(condition: &Condition) -> &'static str {
    match condition {
        Condition::Eq(_) => "=",
        Condition::Ne(_) => "<>",
        Condition::Gt(_) => ">",
        Condition::Gte(_) => ">=",
        Condition::Lt(_) => "<",
        Condition::Lte(_) => "<=",
        _ => unreachable!("only comparisons have a comparator"),
    }
}

/// `EXISTS (a fact at the path such that …)`: looked up in `metadata_values` when the path
/// is indexed, else computed from the document by the same function that fills it, so both
/// give one answer.
fn push_fact(
    sql: &mut QueryBuilder<Postgres>,
    path: &[String],
    indexed_paths: &IndexedPaths,
    test: impl FnOnce(&mut QueryBuilder<Postgres>),
) {
    if indexed_paths.contains(path) {
        sql.push(
            "EXISTS (SELECT 1 FROM metadata_values AS fact \
             WHERE fact.data_id = data_entries.data_id AND fact.path = ",
        )
        .push_bind(path.to_vec())
        .push(" AND (");
    } else {
        sql.push("EXISTS (SELECT 1 FROM metadata_values_at(data_entries.metadata, ")
            .push_bind(path.to_vec())
            .push(") AS fact WHERE (");
    }
    test(sql);
    sql.push("))");
}

/// `fact.kind = … AND fact.value <op> …`. A converted quantity carries rounding in its last
/// bits, so its equality is a narrow range; numbers and instants are exact (both sides
/// parse the same decimal text).
fn push_comparison(sql: &mut QueryBuilder<Postgres>, op: &str, operand: &Operand) {
    let (kind, value) = fact_of(operand);
    sql.push("fact.kind = ").push_bind(kind).push(" AND ");
    match (op, operand) {
        ("=" | "<>", Operand::Quantity { .. }) => {
            let (low, high) = around(value);
            sql.push(if op == "=" { "" } else { "NOT " })
                .push("fact.value BETWEEN ")
                .push_bind(low)
                .push(" AND ")
                .push_bind(high);
        }
        _ => {
            sql.push(format_args!("fact.value {op} ")).push_bind(value);
        }
    }
}

/// Equal to any of `operands` (numbers, instants, quantities of one dimension), with a
/// fixed number of bound parameters however many there are.
fn push_any_of(sql: &mut QueryBuilder<Postgres>, operands: &[&Operand]) {
    let mut exact: Vec<(&str, f64)> = Vec::new();
    let mut ranges: Vec<(&str, f64, f64)> = Vec::new();
    for operand in operands {
        let (kind, value) = fact_of(operand);
        match operand {
            Operand::Quantity { .. } => {
                let (low, high) = around(value);
                ranges.push((kind, low, high));
            }
            _ => exact.push((kind, value)),
        }
    }
    let (kinds, values): (Vec<&str>, Vec<f64>) = exact.into_iter().unzip();
    sql.push("(fact.kind, fact.value) IN (SELECT * FROM unnest(")
        .push_bind(kinds)
        .push("::text[], ")
        .push_bind(values)
        .push("::float8[]))");
    if !ranges.is_empty() {
        let kinds: Vec<&str> = ranges.iter().map(|range| range.0).collect();
        let lows: Vec<f64> = ranges.iter().map(|range| range.1).collect();
        let highs: Vec<f64> = ranges.iter().map(|range| range.2).collect();
        sql.push(" OR EXISTS (SELECT 1 FROM unnest(")
            .push_bind(kinds)
            .push("::text[], ")
            .push_bind(lows)
            .push("::float8[], ")
            .push_bind(highs)
            .push(
                "::float8[]) AS range (kind, low, high) \
                 WHERE fact.kind = range.kind AND fact.value BETWEEN range.low AND range.high)",
            );
    }
}

/// The `metadata_values` kind and value an operand is compared with.
fn fact_of(operand: &Operand) -> (&'static str, f64) {
    match operand {
        Operand::Number(number) => ("number", *number),
        Operand::Instant(seconds) => ("instant", *seconds),
        Operand::Quantity { si, dimension } => (dimension.name(), *si),
        Operand::Bool(_) | Operand::Text(_) => unreachable!("tested on the document"),
    }
}

/// A relative 1e-9 either side of an SI value.
fn around(value: f64) -> (f64, f64) {
    let tolerance = value.abs() * 1e-9;
    (value - tolerance, value + tolerance)
}

/// ` <joiner>jsonb_path_match(metadata, <tests joined by &&>, <variables>, true)`.
fn push_document(
    sql: &mut QueryBuilder<Postgres>,
    joiner: &str,
    tests: &[String],
    variables: serde_json::Map<String, Value>,
) {
    sql.push(joiner)
        .push("jsonb_path_match(metadata, ")
        .push_bind(tests.join(" && "))
        .push("::jsonpath, ")
        .push_bind(Value::Object(variables))
        .push(", true)");
}

/// A string literal of the path language: `"…"` with `"`, `\` and control characters escaped.
fn literal(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if (c as u32) < 0x20 => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A regular expression matching `text` literally (every character but letters and digits
/// escaped).
fn regex_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !c.is_alphanumeric() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `$."a"."b"`: the path in the path language (in lax mode, through arrays on the way),
/// each key written as one of its string literals.
pub(super) fn at(path: &[String]) -> String {
    std::iter::once("$".to_owned())
        .chain(path.iter().map(|key| literal(key)))
        .collect::<Vec<_>>()
        .join(".")
}

/// A path variable holding a string or boolean operand, named by its position.
fn bind(operand: &Operand, variables: &mut serde_json::Map<String, Value>) -> String {
    let name = format!("v{}", variables.len());
    let value = match operand {
        Operand::Bool(boolean) => Value::Bool(*boolean),
        Operand::Text(text) => Value::String(text.clone()),
        _ => unreachable!("numbers, instants and quantities are looked up as facts"),
    };
    variables.insert(name.clone(), value);
    format!("${name}")
}

/// A test on the document for a string or boolean operand, or `prefix`/`contains`.
fn document_test(
    path: &[String],
    condition: &Condition,
    variables: &mut serde_json::Map<String, Value>,
) -> String {
    // `exists(<path> ? (<test>))`: true when any value at the path (any element of an
    // array there, in lax mode) passes; a value of another type is unknown, so false.
    let test = |test: String| format!("exists({} ? ({test}))", at(path));
    match condition {
        Condition::Prefix(text) => test(format!(
            "@ like_regex {} flag \"i\"",
            literal(&format!("^{}", regex_literal(text)))
        )),
        Condition::Contains(text) => test(format!("@ like_regex {} flag \"iq\"", literal(text))),
        Condition::Eq(operand)
        | Condition::Ne(operand)
        | Condition::Gt(operand)
        | Condition::Gte(operand)
        | Condition::Lt(operand)
        | Condition::Lte(operand) => {
            let op = match comparator(condition) {
                "=" => "==",
                "<>" => "!=",
                other => other,
            };
            test(format!("@ {op} {}", bind(operand, variables)))
        }
        Condition::In(_) | Condition::Exists(_) => unreachable!("composed by push_conditions"),
    }
}
