//! The change feed: what an event says, where a reader is in the feed (its cursor), and the
//! questions a reader may ask of it (`GET /events`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{EventType, FieldError};

/// Most events one page of the polled feed holds, and how many it holds unless asked.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 100;

/// One effective change, as the feed and webhooks tell it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Its cursor: following `after=<id>` continues right after it.
    #[serde(rename = "id", serialize_with = "cursor_text")]
    pub position: i64,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub project_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_id: Option<Uuid>,
    /// An entry's revision after the change (1 for a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(serialize_with = "super::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    /// Entry events: `{"field": {"before", "after"}, "metadata": {"key": {…}}}`, as in
    /// history. A member change: `{"user_id", "role": {"before", "after"}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub user_id: String,
    pub key_id: Option<Uuid>,
}

fn cursor_text<S: serde::Serializer>(position: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(position)
}

impl Event {
    /// The member whose access a member change changed.
    pub fn member_changed(&self) -> Option<&str> {
        match self.event_type {
            EventType::MemberChanged => self.changes.as_ref()?.get("user_id")?.as_str(),
            _ => None,
        }
    }
}

/// A place in the feed: the position of the last event read (0: before the first).
pub fn parse_cursor(field: &str, text: &str) -> Result<i64, FieldError> {
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(position) if position >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(position),
        _ => Err(FieldError::new(
            field,
            "invalid_cursor",
            format!("'{field}' must be an event id from this feed (a non-negative integer)"),
        )),
    }
}

/// What a reader asks of the feed. The caller's access narrows it further, in the
/// statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedQuery {
    /// Events after this position; `None`: from the oldest kept (polled) or from now (live).
    pub after: Option<i64>,
    pub project_id: Option<Uuid>,
    /// Only these types; `None`: all.
    pub types: Option<Vec<EventType>>,
    pub limit: usize,
}

impl FeedQuery {
    /// From the query string's pairs; every mistake is named, none is ignored.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, Vec<FieldError>> {
        let mut query = FeedQuery {
            limit: DEFAULT_PAGE,
            ..FeedQuery::default()
        };
        let mut errors = Vec::new();
        for (name, value) in pairs {
            match name.as_str() {
                "after" => match parse_cursor("after", value) {
                    Ok(position) => query.after = Some(position),
                    Err(error) => errors.push(error),
                },
                "project_id" => match Uuid::parse_str(value.trim()) {
                    Ok(project) => query.project_id = Some(project),
                    Err(_) => errors.push(FieldError::invalid_value(
                        "project_id",
                        format!("'project_id' must be a UUID, not '{value}'"),
                    )),
                },
                "type" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        match name.parse::<EventType>() {
                            Ok(event_type) => {
                                let types = query.types.get_or_insert_with(Vec::new);
                                if !types.contains(&event_type) {
                                    types.push(event_type);
                                }
                            }
                            Err(()) => errors.push(FieldError::invalid_value(
                                "type",
                                format!(
                                    "unknown event type '{name}'; known: {}",
                                    EventType::NAMES.join(", ")
                                ),
                            )),
                        }
                    }
                }
                "limit" => match value.trim().parse::<usize>() {
                    Ok(limit) if (1..=MAX_PAGE).contains(&limit) => query.limit = limit,
                    _ => errors.push(FieldError::invalid_value(
                        "limit",
                        format!("'limit' must be an integer from 1 to {MAX_PAGE}"),
                    )),
                },
                other => errors.push(FieldError::new(
                    other,
                    "unknown_parameter",
                    format!(
                        "unknown query parameter '{other}'; known: after, project_id, type, limit"
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    /// Whether `event` is one this query asks for (the caller's access aside).
    pub fn wants(&self, event: &Event) -> bool {
        self.project_id.is_none_or(|p| p == event.project_id)
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn a_cursor_is_a_non_negative_integer_and_nothing_else() {
        assert_eq!(parse_cursor("after", "42"), Ok(42));
        assert_eq!(parse_cursor("after", "0"), Ok(0));
        for bad in ["-1", "+3", "1e3", "abc", "", "99999999999999999999", "4 2"] {
            assert!(parse_cursor("after", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_feed_query_names_every_mistake() {
        let errors =
            FeedQuery::parse(&pairs("after=x&type=entry.nope&limit=0&colour=red")).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["after", "type", "limit", "colour"]);
    }

    #[test]
    fn types_may_be_listed_with_commas_or_repeated() {
        let query = FeedQuery::parse(&pairs(
            "type=entry.created,entry.updated&type=entry.created",
        ))
        .unwrap();
        assert_eq!(
            query.types,
            Some(vec![EventType::EntryCreated, EventType::EntryUpdated])
        );
        assert_eq!(query.limit, DEFAULT_PAGE);
    }

    #[test]
    fn an_event_is_told_with_its_cursor_as_text() {
        let event = Event {
            position: 7,
            event_type: EventType::EntryUpdated,
            project_id: Uuid::nil(),
            data_id: Some(Uuid::nil()),
            revision: Some(2),
            occurred_at: DateTime::from_timestamp(0, 0).unwrap(),
            actor: Actor {
                user_id: "ada".into(),
                key_id: None,
            },
            changes: None,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["id"], "7");
        assert_eq!(json["type"], "entry.updated");
        assert_eq!(json["occurred_at"], "1970-01-01T00:00:00Z");
        assert!(json.get("changes").is_none());
    }
}
