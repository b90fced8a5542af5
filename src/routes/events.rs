//! `GET /events`: the change feed, as pages of JSON or, with `Accept: text/event-stream`,
//! live as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::mpsc;

use super::response::query_pairs;
use crate::auth::Principal;
use crate::domain::Scope;
use crate::domain::event::{Event, FeedQuery, parse_cursor};
use crate::error::ApiError;
use crate::openapi::responses::*;
use crate::openapi::schemas::FeedEvent;
use crate::startup::AppState;

/// How long an EventSource waits before reconnecting, told at the start of each stream.
const RETRY_MS: u32 = 2000;

#[utoipa::path(
    get,
    path = "/events",
    operation_id = "list_events",
    tag = "events",
    summary = "The change feed: every change to what the caller may read, in commit order",
    description = "Entry creates, updates, moves and deletes, new samples and membership \
        changes of the projects the caller can read at the time of reading, oldest first. \
        Follow `after=<id of the last event read>`: from any cursor the feed never skips an \
        event that committed and never repeats one. Without `after` a page starts at the \
        oldest event kept (`events.retention_days`); a cursor older than that is a 410.\n\n\
        With `Accept: text/event-stream` the same route streams the events live as \
        Server-Sent Events (`id:` the cursor, `data:` the event as here), from `after` or \
        the `Last-Event-ID` header, else from now; comments keep it alive. The stream ends \
        when the caller loses access to a project it could read, or its key is revoked; \
        the client reconnects with `Last-Event-ID`.",
    params(crate::openapi::params::FeedParams),
    responses(
        (status = 200, description = "Events after the cursor, oldest first.",
            body = Vec<FeedEvent>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 410, response = Gone),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let mut query = FeedQuery::parse(&query_pairs(&request)).map_err(ApiError::BadQuery)?;
    if !wants_stream(&request) {
        let events = state.feed.page(&principal, &query).await?;
        return Ok(HttpResponse::Ok().json(events));
    }
    // A reconnecting EventSource says where it was; that is newer than the URL's `after`.
    if let Some(value) = request.headers().get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadHeader("Last-Event-ID must be text".into()))?;
        query.after = Some(
            parse_cursor("Last-Event-ID", text).map_err(|error| ApiError::BadQuery(vec![error]))?,
        );
    }
    let events = state.feed.subscribe(principal, query).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx would otherwise hold the stream back in its buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(event_stream(events, state.feed_keepalive)))
}

fn wants_stream(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The stream's bytes: `retry:` first, then each event, and a comment whenever nothing was
/// sent for `keepalive`. It ends when the subscription does.
fn event_stream(
    events: mpsc::Receiver<Event>,
    keepalive: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    let start = Bytes::from(format!("retry: {RETRY_MS}\n\n"));
    futures_util::stream::unfold(
        (events, Some(start)),
        move |(mut events, start)| async move {
            if let Some(start) = start {
                return Some((Ok(start), (events, None)));
            }
            let chunk = match tokio::time::timeout(keepalive, events.recv()).await {
                Ok(Some(event)) => frame(&event),
                Ok(None) => return None,
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            };
            Some((Ok(chunk), (events, None)))
        },
    )
}

/// One event as an SSE message; the JSON is on one line, so one `data:` field holds it.
fn frame(event: &Event) -> Bytes {
    let json = serde_json::to_string(event).expect("an event serializes");
    Bytes::from(format!("id: {}\ndata: {json}\n\n", event.position))
}
