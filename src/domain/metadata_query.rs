//! `metadata.<path>[<op>]=<value>`: conditions on nested metadata values, parsed and checked
//! here (a 400 naming the parameter for anything malformed), turned into SQL in
//! `db::metadata_filters`.

use super::FieldError;
use super::query_limits::{MAX_IDS, too_many};

/// A comparison on the value(s) at a path. Where the stored value is an array, a condition
/// holds when it holds for any element.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq(Operand),
    Ne(Operand),
    Gt(Operand),
    Gte(Operand),
    Lt(Operand),
    Lte(Operand),
    /// Equal to any of these.
    In(Vec<Operand>),
    Exists(bool),
    /// Case-insensitive, on strings.
    Prefix(String),
    /// Case-insensitive substring, on strings.
    Contains(String),
}

/// A filter value: a number when it reads as one (compared numerically), else a string. A
/// stored value of the other type never matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    Text(String),
}

impl Operand {
    fn parse(text: &str) -> Self {
        match text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Operand::Number(number),
            _ => Operand::Text(text.to_owned()),
        }
    }
}

pub const OPERATORS: &[&str] = &[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "prefix", "contains",
];

/// Splits `metadata.<path>[<op>]` (after `metadata.`) into the path and the operator, if
/// any: the operator starts at the first `[` not escaped with `\`.
pub fn split_operator(text: &str) -> (&str, Option<&str>) {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' => return (&text[..at], Some(&text[at..])),
            _ => {}
        }
    }
    (text, None)
}

/// The operator of `[<op>]`, as `split_operator` left it.
pub fn operator_name<'a>(parameter: &str, bracketed: &'a str) -> Result<&'a str, FieldError> {
    bracketed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|op| !op.contains(['[', ']']))
        .ok_or_else(|| {
            FieldError::invalid_value(
                parameter,
                format!("'{parameter}': write a filter as metadata.<path>[<op>]; a '[' or ']' inside a key is escaped as '\\[' or '\\]'"),
            )
        })
}

/// Splits `instrument.settings.pass\.energy` into its keys: `.` separates them; `\.`, `\[`,
/// `\]` and `\\` are those characters inside a key; any other escape, a bare `[` or `]`, or
/// an empty key is an error.
pub fn parse_path(parameter: &str, text: &str) -> Result<Vec<String>, FieldError> {
    let bad = |why: &str| FieldError::invalid_value(parameter, format!("'{parameter}': {why}"));
    let mut keys = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('.' | '\\' | '[' | ']')) => {
                    keys.last_mut().expect("one key").push(escaped)
                }
                _ => {
                    return Err(bad(
                        "in a metadata path, '\\' escapes only '.', '[', ']' and '\\'",
                    ));
                }
            },
            '[' | ']' => {
                return Err(bad(
                    "a '[' or ']' inside a key is escaped as '\\[' or '\\]'",
                ));
            }
            '.' => keys.push(String::new()),
            '\0' => return Err(bad("a metadata path contains no NUL")),
            other => keys.last_mut().expect("one key").push(other),
        }
    }
    if keys.iter().any(String::is_empty) {
        return Err(bad("a metadata path needs a key between every two dots"));
    }
    Ok(keys)
}

/// The condition `op` (one of `OPERATORS`) with `value`, for the query parameter `parameter`.
pub fn parse_condition(parameter: &str, op: &str, value: &str) -> Result<Condition, FieldError> {
    if value.contains('\0') {
        return Err(FieldError::invalid_value(
            parameter,
            "a metadata filter contains no NUL",
        ));
    }
    let operand = || Operand::parse(value);
    Ok(match op {
        "eq" => Condition::Eq(operand()),
        "ne" => Condition::Ne(operand()),
        "gt" => Condition::Gt(operand()),
        "gte" => Condition::Gte(operand()),
        "lt" => Condition::Lt(operand()),
        "lte" => Condition::Lte(operand()),
        "in" if value.split(',').count() > MAX_IDS => return Err(too_many(parameter, MAX_IDS)),
        "in" => Condition::In(value.split(',').map(Operand::parse).collect()),
        "exists" => match value {
            "true" => Condition::Exists(true),
            "false" => Condition::Exists(false),
            _ => {
                return Err(FieldError::invalid_value(
                    parameter,
                    format!("'{parameter}' takes true or false"),
                ));
            }
        },
        "prefix" => Condition::Prefix(value.to_owned()),
        "contains" => Condition::Contains(value.to_owned()),
        other => {
            return Err(FieldError {
                field: parameter.to_owned(),
                code: "invalid_enum_value",
                message: format!(
                    "'{other}' is not a metadata filter operator; allowed: {}",
                    OPERATORS.join(", ")
                ),
                allowed_values: Some(OPERATORS.to_vec()),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_dots_and_keep_escaped_ones() {
        assert_eq!(parse_path("p", "a.b.c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            parse_path("p", r"pass\.energy.x\\y").unwrap(),
            ["pass.energy", r"x\y"]
        );
        assert!(parse_path("p", "a..b").is_err());
        assert!(parse_path("p", r"a\b").is_err());
        assert!(parse_path("p", "a.").is_err());
        assert_eq!(parse_path("p", r"a\[0\]").unwrap(), ["a[0]"]);
        assert!(parse_path("p", "a]").is_err());
    }

    #[test]
    fn the_operator_starts_at_the_first_unescaped_bracket() {
        assert_eq!(split_operator("a.b[gt]"), ("a.b", Some("[gt]")));
        assert_eq!(split_operator(r"a\[0\][eq]"), (r"a\[0\]", Some("[eq]")));
        assert_eq!(split_operator("a.b"), ("a.b", None));
        assert_eq!(operator_name("p", "[gt]").unwrap(), "gt");
        assert!(operator_name("p", "[gt").is_err());
        assert!(operator_name("p", "[gt][lt]").is_err());
    }

    #[test]
    fn operands_are_numbers_when_they_read_as_numbers() {
        assert_eq!(
            parse_condition("p", "gt", "9").unwrap(),
            Condition::Gt(Operand::Number(9.0))
        );
        assert_eq!(
            parse_condition("p", "gt", "PHI").unwrap(),
            Condition::Gt(Operand::Text("PHI".into()))
        );
        assert!(parse_condition("p", "near", "1").is_err());
        assert!(parse_condition("p", "exists", "yes").is_err());
        let many = vec!["1"; 1001].join(",");
        assert_eq!(
            parse_condition("p", "in", &many).unwrap_err().code,
            "too_many_values"
        );
    }
}
