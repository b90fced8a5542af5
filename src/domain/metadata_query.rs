//! `metadata.<path>[<op>]=<value>`: conditions on nested metadata values, parsed and checked
//! here (a 400 naming the parameter for anything malformed), turned into SQL in
//! `db::metadata_filters`.

use super::FieldError;
use super::query_limits::{MAX_IDS, too_many};
use super::units::{self, Dimension, Unit, UnknownUnit};

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

/// A filter value, typed by how it reads. A stored value of another type never matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(f64),
    /// An RFC 3339 date-time, as seconds since the epoch: compared as an instant, so
    /// `10:00:00+01:00` equals `09:00:00Z`.
    Instant(f64),
    /// A number with a known unit, in SI: compared with stored quantities of its dimension.
    Quantity {
        si: f64,
        dimension: Dimension,
    },
    /// `true` or `false` (for `eq`, `ne`, `in`).
    Bool(bool),
    Text(String),
}

impl Operand {
    /// How a comparison (`gt`, `gte`, `lt`, `lte`) reads its value; a number followed by an
    /// unknown unit is an error rather than a string comparison nobody meant.
    fn ordered(parameter: &str, text: &str) -> Result<Self, FieldError> {
        if let Some(operand) = Self::number_or_instant(text) {
            return Ok(operand);
        }
        match units::parse_quantity(text) {
            Ok(Some((value, unit))) => Ok(Self::quantity(value, unit)),
            Ok(None) => Ok(Operand::Text(text.to_owned())),
            Err(UnknownUnit(unit)) => Err(FieldError::invalid_value(
                parameter,
                format!("'{parameter}': '{unit}' is not a unit labcat knows"),
            )),
        }
    }

    /// How `eq`, `ne` and `in` read a value: also booleans, and text with an unknown unit
    /// stays text (`3a` is a sample name, not 3 of some unit).
    fn equatable(text: &str) -> Self {
        match text {
            "true" => return Operand::Bool(true),
            "false" => return Operand::Bool(false),
            _ => {}
        }
        if let Some(operand) = Self::number_or_instant(text) {
            return operand;
        }
        match units::parse_quantity(text) {
            Ok(Some((value, unit))) => Self::quantity(value, unit),
            _ => Operand::Text(text.to_owned()),
        }
    }

    fn number_or_instant(text: &str) -> Option<Self> {
        if let Ok(number) = text.trim().parse::<f64>()
            && number.is_finite()
        {
            return Some(Operand::Number(number));
        }
        chrono::DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|instant| {
                Operand::Instant(
                    instant.timestamp() as f64 + f64::from(instant.timestamp_subsec_micros()) / 1e6,
                )
            })
    }

    fn quantity(value: f64, unit: Unit) -> Self {
        Operand::Quantity {
            si: unit.to_si(value),
            dimension: unit.dimension,
        }
    }

    pub fn dimension(&self) -> Option<Dimension> {
        match self {
            Operand::Quantity { dimension, .. } => Some(*dimension),
            _ => None,
        }
    }
}

impl Condition {
    /// The dimensions of the quantities this condition compares with.
    pub fn dimensions(&self) -> Vec<Dimension> {
        match self {
            Condition::Eq(operand)
            | Condition::Ne(operand)
            | Condition::Gt(operand)
            | Condition::Gte(operand)
            | Condition::Lt(operand)
            | Condition::Lte(operand) => operand.dimension().into_iter().collect(),
            Condition::In(operands) => operands.iter().filter_map(Operand::dimension).collect(),
            Condition::Exists(_) | Condition::Prefix(_) | Condition::Contains(_) => Vec::new(),
        }
    }
}

/// A 400 unless the quantities compared at one path share a dimension: `[gte]=1000 K` with
/// `[lte]=5 mbar` on one path asks for something no value can be.
pub fn check_dimensions(
    parameter: &str,
    dimensions: impl IntoIterator<Item = Dimension>,
) -> Result<(), FieldError> {
    let mut dimensions = dimensions.into_iter();
    let Some(first) = dimensions.next() else {
        return Ok(());
    };
    match dimensions.find(|other| *other != first) {
        None => Ok(()),
        Some(other) => Err(FieldError::invalid_value(
            parameter,
            format!(
                "'{parameter}': a {} and a {} cannot be compared; the units of the filters on one path must share a dimension",
                first.name(),
                other.name()
            ),
        )),
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

/// Writes keys the way `parse_path` reads them: joined by `.`, with `.`, `[`, `]` and `\`
/// inside a key escaped by a backslash. For keys that are not empty and hold no NUL (every
/// path `parse_path` gives), `parse_path` reads back exactly these keys. Key discovery
/// (`GET /metadata/keys`) lists paths in this form, so each can be pasted into a filter.
pub fn write_path<K: AsRef<str>>(keys: &[K]) -> String {
    let mut written = String::new();
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            written.push('.');
        }
        for c in key.as_ref().chars() {
            if matches!(c, '.' | '[' | ']' | '\\') {
                written.push('\\');
            }
            written.push(c);
        }
    }
    written
}

/// The condition `op` (one of `OPERATORS`) with `value`, for the query parameter `parameter`.
pub fn parse_condition(parameter: &str, op: &str, value: &str) -> Result<Condition, FieldError> {
    if value.contains('\0') {
        return Err(FieldError::invalid_value(
            parameter,
            "a metadata filter contains no NUL",
        ));
    }
    let ordered = || Operand::ordered(parameter, value);
    let condition = match op {
        "eq" => Condition::Eq(Operand::equatable(value)),
        "ne" => Condition::Ne(Operand::equatable(value)),
        "gt" => Condition::Gt(ordered()?),
        "gte" => Condition::Gte(ordered()?),
        "lt" => Condition::Lt(ordered()?),
        "lte" => Condition::Lte(ordered()?),
        "in" if value.split(',').count() > MAX_IDS => return Err(too_many(parameter, MAX_IDS)),
        "in" => Condition::In(value.split(',').map(Operand::equatable).collect()),
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
                violation: None,
            });
        }
    };
    check_dimensions(parameter, condition.dimensions())?;
    Ok(condition)
}

/// The metadata paths search keeps facts for (`search.indexed_paths`, as the database holds
/// them after `db::metadata_index::sync`, the only maker of this type): a comparison on one
/// of them is an index probe, on any other path it reads the document.
#[derive(Debug, Clone)]
pub struct IndexedPaths(std::sync::Arc<std::collections::HashSet<Vec<String>>>);

impl IndexedPaths {
    pub(crate) fn new(paths: impl IntoIterator<Item = Vec<String>>) -> Self {
        Self(std::sync::Arc::new(paths.into_iter().collect()))
    }

    pub fn contains(&self, path: &[String]) -> bool {
        self.0.contains(path)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Vec<String>> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
    fn written_paths_read_back_as_the_same_keys() {
        assert_eq!(
            write_path(&["instrument", "pass.energy", r"a[0]\b"]),
            r"instrument.pass\.energy.a\[0\]\\b"
        );
        // Every key of up to three characters from an alphabet of the escaped characters
        // and others, alone and in pairs: written, then parsed, it is the same path, and
        // the written form is the only one that parses to it.
        let alphabet = ['a', '.', '[', ']', '\\', 'é', '"', ' '];
        let mut keys: Vec<String> = Vec::new();
        for length in 1..=3u32 {
            for n in 0..alphabet.len().pow(length) {
                let mut rest = n;
                let key: String = (0..length)
                    .map(|_| {
                        let c = alphabet[rest % alphabet.len()];
                        rest /= alphabet.len();
                        c
                    })
                    .collect();
                keys.push(key);
            }
        }
        for first in &keys {
            let path = vec![first.clone()];
            let written = write_path(&path);
            assert_eq!(parse_path("p", &written).unwrap(), path, "{written}");
            for second in keys.iter().step_by(7) {
                let path = vec![first.clone(), second.clone()];
                let written = write_path(&path);
                assert_eq!(parse_path("p", &written).unwrap(), path, "{written}");
                assert_eq!(write_path(&parse_path("p", &written).unwrap()), written);
            }
        }
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
    fn operands_are_typed_by_how_they_read() {
        assert_eq!(
            parse_condition("p", "gt", "9").unwrap(),
            Condition::Gt(Operand::Number(9.0))
        );
        assert_eq!(
            parse_condition("p", "eq", "true").unwrap(),
            Condition::Eq(Operand::Bool(true))
        );
        assert_eq!(
            parse_condition("p", "gte", "2025-01-01T01:00:00+01:00").unwrap(),
            Condition::Gte(Operand::Instant(1_735_689_600.0))
        );
        let Condition::Gte(Operand::Quantity { si, dimension }) =
            parse_condition("p", "gte", "750degC").unwrap()
        else {
            panic!("a quantity")
        };
        assert_eq!(dimension, Dimension::Temperature);
        assert!((si - 1023.15).abs() < 1e-9);
        assert_eq!(
            parse_condition("p", "lt", "1969-12-31T23:59:58.5Z").unwrap(),
            Condition::Lt(Operand::Instant(-1.5))
        );
        assert!(parse_condition("p", "gt", "3 parsecs").is_err());
        assert_eq!(
            parse_condition("p", "eq", "3a").unwrap(),
            Condition::Eq(Operand::Text("3a".into()))
        );
        let mixed = parse_condition("p", "in", "1 K,2 mbar").unwrap_err();
        assert!(mixed.message.contains("temperature") && mixed.message.contains("pressure"));
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
