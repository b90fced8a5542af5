//! What every bulk route (`PATCH /data_entries`, `POST /v2/bulk/files/*`) does alike: it
//! checks how many items there are, that no item names an entry another item names, and
//! that the user's rate limit can pay one token per item, all before any work; and it
//! writes its answer item by item, so each document is held once, as text.

use std::collections::HashMap;
use std::num::NonZeroU32;

use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domain::FieldError;
use crate::error::ApiError;
use crate::rate_limit::{Class, Refusal};
use crate::startup::AppState;

pub const TOO_MANY_ITEMS: &str = "too_many_items";
pub const DUPLICATE_ITEM: &str = "duplicate_item";

/// 400 `too_many_items` when `count` items are more than one request may carry:
/// `writes.bulk_max_items`, and with rate limiting on, the tokens of the bucket the request
/// draws from (each item costs one, so more could never be paid for). `field` is where the
/// items are in the body.
pub fn check_count(
    state: &AppState,
    request: &HttpRequest,
    field: &str,
    count: usize,
) -> Result<(), ApiError> {
    let class = Class::of_request(request);
    let bucket = state
        .rate_limits
        .as_ref()
        .map(|limits| limits.bucket_size(class) as usize);
    let message = match bucket {
        Some(bucket) if count > bucket && bucket < state.bulk_max_items => format!(
            "at most {bucket} items per request: each item costs one token of the user's \
             '{policy}' rate limit, whose bucket holds {bucket} (rate_limit.{policy}_burst); \
             this request has {count}",
            policy = class.policy(),
        ),
        _ if count > state.bulk_max_items => format!(
            "at most {} items per request (writes.bulk_max_items); this request has {count}",
            state.bulk_max_items
        ),
        _ => return Ok(()),
    };
    Err(ApiError::BadRequest(vec![FieldError::new(
        field,
        TOO_MANY_ITEMS,
        message,
    )]))
}

/// 400 `duplicate_item` when an entry is named by more than one item: one error per such
/// entry, at its second item (`field_at` names an item's id by its position), giving every
/// position. Each item costs work and answer space of its own, so a repeat is refused
/// rather than done again, and its answer is not repeated either.
pub fn refuse_repeats(
    ids: impl IntoIterator<Item = (usize, Uuid)>,
    field_at: impl Fn(usize) -> String,
) -> Result<(), ApiError> {
    let mut positions: Vec<(Uuid, Vec<usize>)> = Vec::new();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    for (position, id) in ids {
        match seen.get(&id) {
            Some(&group) => positions[group].1.push(position),
            None => {
                seen.insert(id, positions.len());
                positions.push((id, vec![position]));
            }
        }
    }
    let errors: Vec<FieldError> = positions
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(id, at)| {
            let listed = at
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            FieldError::new(
                field_at(at[1]),
                DUPLICATE_ITEM,
                format!(
                    "'{id}' is named by {} items, at positions {listed} (counted from 0); \
                     each item must name a different entry",
                    at.len()
                ),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest(errors))
    }
}

/// Charges `count` items to the user's rate limit: the first token was taken at
/// authentication, this takes the rest, all or none (429 with Retry-After when the bucket
/// cannot pay now). Call it after `check_count`, before any work.
pub fn charge(
    state: &AppState,
    request: &HttpRequest,
    principal: &Principal,
    count: usize,
) -> Result<(), ApiError> {
    let Some(limits) = &state.rate_limits else {
        return Ok(());
    };
    let more = u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX);
    let Some(more) = NonZeroU32::new(more) else {
        return Ok(());
    };
    let class = Class::of_request(request);
    match limits.charge_more(&principal.user_id, class, more) {
        Ok(status) => {
            // The response's RateLimit headers tell the standing after the whole charge.
            request.extensions_mut().insert(status);
            Ok(())
        }
        Err(Refusal::Empty(status)) => {
            state.metrics.rate_limited(status.policy);
            request.extensions_mut().insert(status.clone());
            Err(ApiError::RateLimited(status))
        }
        // `check_count` already refused a bulk larger than the bucket.
        Err(Refusal::NeverEnough { bucket }) => Err(ApiError::BadRequest(vec![FieldError::new(
            "items",
            TOO_MANY_ITEMS,
            format!("at most {bucket} items per request"),
        )])),
    }
}

/// A JSON answer written item by item into one buffer: each item is serialised as soon as
/// it is done and its tree dropped, so a bulk answer of large documents holds each one
/// once, as text, besides the one being written.
pub struct JsonItems {
    buffer: Vec<u8>,
    empty: bool,
}

impl JsonItems {
    /// `opening` is everything before the first item, e.g. `[` or `{"items":[`.
    pub fn new(opening: &str) -> Self {
        Self {
            buffer: opening.as_bytes().to_vec(),
            empty: true,
        }
    }

    pub fn push(&mut self, item: &impl Serialize) -> Result<(), ApiError> {
        if !self.empty {
            self.buffer.push(b',');
        }
        self.empty = false;
        serde_json::to_writer(&mut self.buffer, item)
            .map_err(|error| ApiError::Internal(error.into()))
    }

    /// A 200 with the items and `closing`, e.g. `]` or `]}`.
    pub fn respond(mut self, closing: &str) -> HttpResponse {
        self.buffer.extend_from_slice(closing.as_bytes());
        HttpResponse::Ok()
            .content_type("application/json")
            .body(self.buffer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn repeats_are_named_with_every_position() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let ids = [a, b, a, c, b, a].into_iter().enumerate();
        let Err(ApiError::BadRequest(errors)) = refuse_repeats(ids, |i| format!("items[{i}]"))
        else {
            panic!("repeats refused");
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "items[2]");
        assert_eq!(errors[0].code, DUPLICATE_ITEM);
        assert!(errors[0].message.contains(&a.to_string()));
        assert!(
            errors[0].message.contains("positions 0, 2, 5"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[1].field, "items[4]");
        assert!(errors[1].message.contains("positions 1, 4"));
        assert!(refuse_repeats([(0, a), (1, b)], |i| i.to_string()).is_ok());
    }

    #[test]
    fn items_are_written_as_one_json_document() {
        let mut items = JsonItems::new(r#"{"items":["#);
        items.push(&json!({"a": 1})).unwrap();
        items.push(&json!({"b": [2]})).unwrap();
        let response = items.respond("]}");
        let body = actix_web::body::MessageBody::try_into_bytes(response.into_body()).unwrap();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, json!({"items": [{"a": 1}, {"b": [2]}]}));
        let empty = JsonItems::new("[").respond("]");
        let body = actix_web::body::MessageBody::try_into_bytes(empty.into_body()).unwrap();
        assert_eq!(&body[..], b"[]");
    }
}
