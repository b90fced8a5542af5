//! Metadata filters in SQL, shaped so a row's document is read at most twice however many
//! filters a request carries.

use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::metadata_query::{Condition, Operand};

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

/// Pushes ` AND …` requiring every condition: all of them as one SQL/JSON path predicate,
/// so the document is read once for all. Values go in as the path's variables; only keys
/// and `prefix`/`contains` patterns are written into the path text, escaped as its string
/// literals.
pub fn push_conditions(sql: &mut QueryBuilder<Postgres>, conditions: &[(Vec<String>, Condition)]) {
    if conditions.is_empty() {
        return;
    }
    let mut variables = serde_json::Map::new();
    let mut parts = Vec::new();
    for (path, condition) in conditions {
        parts.push(predicate(path, condition, &mut variables));
    }
    sql.push(" AND jsonb_path_match(metadata, ")
        .push_bind(parts.join(" && "))
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

fn predicate(
    path: &[String],
    condition: &Condition,
    variables: &mut serde_json::Map<String, Value>,
) -> String {
    let at: String = std::iter::once("$".to_owned())
        .chain(path.iter().map(|key| literal(key)))
        .collect::<Vec<_>>()
        .join(".");
    let mut bind = |operand: &Operand| {
        let name = format!("v{}", variables.len());
        let value = match operand {
            Operand::Number(number) => serde_json::json!(number),
            Operand::Text(text) => Value::String(text.clone()),
        };
        variables.insert(name.clone(), value);
        format!("${name}")
    };
    // `exists(<path> ? (<test>))`: true when any value at the path (any element of an
    // array there, in lax mode) passes; a value of another type is unknown, so false.
    let test = |test: String| format!("exists({at} ? ({test}))");
    match condition {
        Condition::Eq(operand) => test(format!("@ == {}", bind(operand))),
        Condition::Ne(operand) => test(format!("@ != {}", bind(operand))),
        Condition::Gt(operand) => test(format!("@ > {}", bind(operand))),
        Condition::Gte(operand) => test(format!("@ >= {}", bind(operand))),
        Condition::Lt(operand) => test(format!("@ < {}", bind(operand))),
        Condition::Lte(operand) => test(format!("@ <= {}", bind(operand))),
        Condition::In(operands) => {
            let any: Vec<String> = operands
                .iter()
                .map(|o| format!("@ == {}", bind(o)))
                .collect();
            test(any.join(" || "))
        }
        Condition::Exists(true) => format!("exists({at})"),
        Condition::Exists(false) => format!("!exists({at})"),
        Condition::Prefix(text) => test(format!(
            "@ like_regex {} flag \"i\"",
            literal(&format!("^{}", regex_literal(text)))
        )),
        Condition::Contains(text) => test(format!("@ like_regex {} flag \"iq\"", literal(text))),
    }
}
