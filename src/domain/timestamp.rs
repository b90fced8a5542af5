//! Timestamps on the wire: RFC 3339, UTC, `Z` suffix, at most 6 fractional digits
//! (PostgreSQL keeps microseconds).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(at))
}

/// `serialize`, or `null` for `None`.
pub fn serialize_optional<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Whether PostgreSQL can store and compare this instant: years 1 to 9999 (its own range is
/// wider, but chrono's and every client's is not; anything else is a client's mistake).
pub fn storable(at: &DateTime<Utc>) -> bool {
    (1..=9999).contains(&at.year())
}

/// Accepts RFC 3339 and the forms Python's `str(datetime)` produces
/// (`2025-01-01 00:00:00`, `2025-06-01 12:30:00.5+00:00`) and a bare date. No offset means UTC.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    parse_any(text.trim()).filter(storable)
}

fn parse_any(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Some(at.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_micro_precision() {
        let at = DateTime::parse_from_rfc3339("2024-01-15T10:30:00.123456+00:00").unwrap();
        assert_eq!(
            format(&at.with_timezone(&Utc)),
            "2024-01-15T10:30:00.123456Z"
        );
        let at = DateTime::parse_from_rfc3339("2024-01-15T10:30:00+00:00").unwrap();
        assert_eq!(format(&at.with_timezone(&Utc)), "2024-01-15T10:30:00Z");
    }

    #[test]
    fn parses_the_forms_python_sends() {
        let expected = parse("2025-06-01T12:30:00Z").unwrap();
        assert_eq!(parse("2025-06-01 12:30:00+00:00"), Some(expected));
        assert_eq!(parse("2025-06-01 12:30:00"), Some(expected));
        assert_eq!(parse("2025-06-01 14:30:00+02:00"), Some(expected));
        assert!(parse("2025-06-01").is_some());
        assert!(parse("yesterday").is_none());
        assert!(parse("-5000-01-01").is_none());
        assert!(parse("+20000-01-01T00:00:00Z").is_none());
    }
}
