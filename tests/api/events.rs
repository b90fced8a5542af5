//! The change feed: `GET /events` polled and live (SSE). Order and completeness under
//! concurrent writers, resuming, and that nobody learns of what they cannot read.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

use crate::helpers::{TestApp, id_of, send, spawn_app, spawn_app_with};
use labcat::domain::Scope;

/// A live feed as a client reads it: frames split at blank lines, comments skipped.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    /// `retry:` as the server sent it.
    pub retry: Option<String>,
}

impl EventStream {
    pub async fn open(app: &TestApp, key: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app
            .request_as(key, Method::GET, &format!("/events{query}"))
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut stream = Self {
            response,
            buffer: String::new(),
            retry: None,
        };
        // The first frame is `retry:`: once it arrives the subscription is in place.
        assert!(matches!(
            stream.frame(Duration::from_secs(10)).await,
            Frame::Retry
        ));
        stream
    }

    async fn frame(&mut self, within: Duration) -> Frame {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("retry: ") {
                        self.retry = Some(value.to_owned());
                        return Frame::Retry;
                    } else if line.starts_with(':') {
                        return Frame::Comment;
                    }
                }
                let event: Value = serde_json::from_str(&data.expect("an event has data")).unwrap();
                assert_eq!(Some(event["id"].as_str().unwrap()), id.as_deref());
                return Frame::Event(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.response.chunk()).await {
                Err(_) => return Frame::TimedOut,
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) | Ok(Err(_)) => return Frame::Ended,
            }
        }
    }

    /// The next event; panics if none comes within `within` or the stream ends.
    pub async fn next_event(&mut self, within: Duration) -> Value {
        loop {
            match self.frame(within).await {
                Frame::Event(event) => return event,
                Frame::Comment | Frame::Retry => continue,
                Frame::TimedOut => panic!("no event within {within:?}"),
                Frame::Ended => panic!("the stream ended"),
            }
        }
    }

    /// Whether the stream ends within `within` (events before the end are skipped).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frame(left).await {
                Frame::Ended => return true,
                Frame::TimedOut => return false,
                _ => continue,
            }
        }
    }

    /// Every event until none comes for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            match self.frame(quiet).await {
                Frame::Event(event) => events.push(event),
                Frame::Comment | Frame::Retry => continue,
                Frame::TimedOut | Frame::Ended => return events,
            }
        }
    }
}

enum Frame {
    Event(Value),
    Comment,
    Retry,
    TimedOut,
    Ended,
}

async fn poll(app: &TestApp, key: &str, query: &str) -> (StatusCode, Value) {
    send(app.request_as(key, Method::GET, &format!("/events{query}"))).await
}

/// Follows the polled feed from the start until it holds `expected` events.
async fn poll_all(app: &TestApp, key: &str, filter: &str, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events: Vec<Value> = Vec::new();
    let mut after = "0".to_owned();
    while events.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} events",
            events.len()
        );
        let (status, page) = poll(app, key, &format!("?after={after}&limit=1000{filter}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        after = page.last().unwrap()["id"].as_str().unwrap().to_owned();
        events.extend(page);
    }
    events
}

fn position(event: &Value) -> i64 {
    event["id"].as_str().unwrap().parse().unwrap()
}

async fn create_project(app: &TestApp, name: &str) -> String {
    let (status, project) = send(
        app.request(Method::POST, "/projects")
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    project["project_id"].as_str().unwrap().to_owned()
}

async fn set_role(app: &TestApp, project: &str, user: &str, role: &str) {
    let path = format!("/projects/{project}/members/{user}");
    let (status, body) = send(app.request(Method::PUT, &path).json(&json!({"role": role}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Checks that `events` are exactly the history rows written, in an order that keeps each
/// entry's revisions contiguous and rising, with strictly rising cursors.
async fn assert_feed_equals_history(app: &TestApp, events: &[Value]) {
    let positions: Vec<i64> = events.iter().map(position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "cursors rise strictly"
    );
    let mut per_entry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for event in events {
        per_entry
            .entry(event["data_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(event["revision"].as_i64().unwrap());
    }
    let history: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT data_id, revision FROM data_entry_history ORDER BY data_id, revision",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut written: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (data_id, revision) in history {
        written
            .entry(data_id.to_string())
            .or_default()
            .push(revision);
    }
    assert_eq!(
        per_entry, written,
        "the feed tells each history row once, in revision order"
    );
    for revisions in per_entry.values() {
        let expected: Vec<i64> = (1..=revisions.len() as i64).collect();
        assert_eq!(revisions, &expected, "revisions are contiguous");
    }
}

#[tokio::test]
async fn the_feed_holds_every_change_of_twenty_concurrent_writers_once_and_in_order() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let mut live = EventStream::open(&app, &app.api_key, "", None).await;
    let mut entries = Vec::new();
    for n in 0..10 {
        entries.push(
            app.create_entry_id(json!({"raw_name": format!("run_{n}.mp4")}))
                .await,
        );
    }
    let writers: Vec<_> = (0..20)
        .map(|writer| {
            let (client, address, key, entries) = (
                app.client.clone(),
                app.address.clone(),
                app.api_key.clone(),
                entries.clone(),
            );
            tokio::spawn(async move {
                for round in 0..15 {
                    let id = &entries[(writer * 7 + round * 3) % entries.len()];
                    let response = client
                        .patch(format!("{address}/data_entries/{id}"))
                        .header("X-API-KEY", &key)
                        .json(&json!({"metadata": {"writer": writer, "round": round}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let expected = 10 + 20 * 15;

    let polled = poll_all(&app, &app.api_key, "", expected).await;
    assert_eq!(polled.len(), expected);
    assert_feed_equals_history(&app, &polled).await;

    let mut streamed = Vec::new();
    while streamed.len() < expected {
        streamed.push(live.next_event(Duration::from_secs(10)).await);
    }
    assert_eq!(
        streamed, polled,
        "the live feed tells the same events in the same order"
    );
    assert!(
        live.drain(Duration::from_millis(500)).await.is_empty(),
        "and nothing more"
    );
}

#[tokio::test]
async fn a_stream_resumed_with_last_event_id_misses_nothing_and_repeats_nothing() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    // Only updates: the create may be placed in the feed after the stream starts.
    let updates = "?type=entry.updated";
    let mut first = EventStream::open(&app, &app.api_key, updates, None).await;
    for n in 0..3 {
        let (status, _) = send(app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"metadata": {"n": n}}),
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(first.next_event(Duration::from_secs(10)).await);
    }
    drop(first); // the client disconnects
    for n in 3..7 {
        send(app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"metadata": {"n": n}}),
        ))
        .await;
    }
    let last_id = seen.last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut resumed = EventStream::open(&app, &app.api_key, updates, Some(&last_id)).await;
    for _ in 0..4 {
        seen.push(resumed.next_event(Duration::from_secs(10)).await);
    }
    let extra = resumed.drain(Duration::from_millis(500)).await;
    assert!(extra.is_empty(), "{seen:?} then {extra:?}");
    let revisions: Vec<i64> = seen
        .iter()
        .map(|e| e["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions, [2, 3, 4, 5, 6, 7, 8]);

    // `after` in the URL resumes the same way.
    let mut again = EventStream::open(
        &app,
        &app.api_key,
        &format!("{updates}&after={last_id}"),
        None,
    )
    .await;
    assert_eq!(again.next_event(Duration::from_secs(10)).await, seen[3]);
}

#[tokio::test]
async fn a_client_that_subscribes_and_then_writes_sees_its_own_write() {
    let app = spawn_app().await;
    let mut live = EventStream::open(&app, &app.api_key, "", None).await;
    let entry = app.create_entry(json!({"raw_name": "mine.mp4"})).await;
    let event = live.next_event(Duration::from_secs(10)).await;
    assert_eq!(event["type"], "entry.created");
    assert_eq!(event["data_id"], entry["data_id"]);
    assert_eq!(event["revision"], 1);
    assert_eq!(event["actor"]["user_id"], "alice");
    assert_eq!(live.retry.as_deref(), Some("2000"));
}

#[tokio::test]
async fn events_tell_creates_updates_moves_deletes_samples_and_members() {
    let app = spawn_app().await;
    let lab = create_project(&app, "Thin films").await;
    let id = app.create_entry_id(json!({"metadata": {"a": 1}})).await;
    let path = format!("/data_entries/{id}");
    send(app.patch_json(
        &path,
        &json!({"pipeline_status": "success", "metadata": {"b": 2}}),
    ))
    .await;
    // A no-op write makes no event.
    let (status, _) = send(app.patch_json(&path, &json!({"pipeline_status": "success"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, moved) = send(app.patch_json(&path, &json!({"project_id": lab}))).await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let (status, _) = send(app.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, sample) = send(
        app.request(Method::POST, "/physical_samples")
            .json(&json!({"name": "GaN-7", "project_id": lab})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sample}");
    set_role(&app, &lab, "bob", "viewer").await;

    let events = poll_all(&app, &app.api_key, "", 7).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "entry.created",
            "entry.updated",
            "entry.moved",
            "entry.moved",
            "entry.deleted",
            "sample.created",
            "project.member_changed"
        ]
    );
    let updated = &events[1];
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["changes"]["pipeline_status"]["after"], "success");
    assert_eq!(
        updated["changes"]["metadata"]["b"],
        json!({"before": null, "after": 2})
    );
    let projects: HashSet<&str> = events[2..4]
        .iter()
        .map(|e| e["project_id"].as_str().unwrap())
        .collect();
    assert!(
        projects.contains(lab.as_str()) && projects.len() == 2,
        "both projects hear of the move"
    );
    let departed = events[2..4]
        .iter()
        .find(|e| e["project_id"] != lab.as_str())
        .unwrap();
    assert_eq!(
        departed["changes"],
        json!({"project_id": {"before": departed["project_id"]}})
    );
    assert_eq!(events[4]["revision"], 4);
    assert_eq!(events[4]["project_id"], lab.as_str());
    assert_eq!(events[5]["changes"]["name"], "GaN-7");
    assert!(events[5].get("data_id").is_none());
    assert_eq!(
        events[6]["changes"],
        json!({"user_id": "bob", "role": {"before": null, "after": "viewer"}})
    );
    assert!(events.iter().all(|e| e["actor"]["key_id"].is_string()));

    // Filters: one type, one project.
    let (_, only_moves) = poll(&app, &app.api_key, "?type=entry.moved").await;
    assert_eq!(only_moves.as_array().unwrap().len(), 2);
    let (_, in_lab) = poll(&app, &app.api_key, &format!("?project_id={lab}")).await;
    assert_eq!(in_lab.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_viewer_of_one_project_never_sees_another_projects_events() {
    let app = spawn_app().await;
    let shared = create_project(&app, "Shared").await;
    let private = create_project(&app, "Private").await;
    set_role(&app, &shared, "carol", "viewer").await;
    let carol = app.key_for("carol", &[Scope::Read]).await;
    let mut carols_stream = EventStream::open(&app, &carol, "?type=entry.created", None).await;

    app.create_entry_id(json!({"project_id": private, "raw_name": "secret.mp4"}))
        .await;
    app.create_entry_id(json!({"raw_name": "personal.mp4"}))
        .await;
    let visible = app.create_entry_id(json!({"project_id": shared})).await;

    let event = carols_stream.next_event(Duration::from_secs(10)).await;
    assert_eq!(event["data_id"], visible.as_str());
    assert!(
        carols_stream
            .drain(Duration::from_millis(500))
            .await
            .is_empty()
    );

    let (status, polled) = poll(&app, &carol, "").await;
    assert_eq!(status, StatusCode::OK);
    let projects: HashSet<&str> = polled
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["project_id"].as_str().unwrap())
        .collect();
    assert_eq!(projects, HashSet::from([shared.as_str()]));
    // Asking for the other project is the same 404 as a project that does not exist.
    for project in [private.clone(), uuid::Uuid::new_v4().to_string()] {
        let (status, body) = poll(&app, &carol, &format!("?project_id={project}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let response = app
            .request_as(
                &carol,
                Method::GET,
                &format!("/events?project_id={project}"),
            )
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_stream_of_one_project_gets_its_events_from_busy_batches_and_ends_when_removed_from_it() {
    let app = spawn_app().await;
    let shared = create_project(&app, "Shared").await;
    let busy = create_project(&app, "Busy").await;
    set_role(&app, &shared, "carol", "viewer").await;
    set_role(&app, &busy, "carol", "viewer").await;
    let carol = app.key_for("carol", &[Scope::Read]).await;
    // Only creates: the member change that ends it is noticed all the same.
    let query = format!("?project_id={shared}&type=entry.created");
    let mut stream = EventStream::open(&app, &carol, &query, None).await;

    // Writes to both projects at once land in the same batches.
    let mut expected = Vec::new();
    for round in 0..5 {
        let (ours, _, _) = tokio::join!(
            app.create_entry_id(json!({"project_id": shared, "raw_name": format!("s{round}.mp4")})),
            app.create_entry_id(json!({"project_id": busy, "raw_name": format!("b{round}.mp4")})),
            app.create_entry_id(json!({"project_id": busy, "raw_name": format!("c{round}.mp4")})),
        );
        expected.push(ours);
    }
    let mut received = Vec::new();
    for _ in 0..expected.len() {
        let event = stream.next_event(Duration::from_secs(10)).await;
        assert_eq!(event["project_id"], shared.as_str(), "{event}");
        received.push(event["data_id"].as_str().unwrap().to_owned());
    }
    received.sort();
    expected.sort();
    assert_eq!(received, expected);
    assert!(stream.drain(Duration::from_millis(500)).await.is_empty());

    let (status, _) =
        send(app.request(Method::DELETE, &format!("/projects/{shared}/members/carol"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        stream.ends_within(Duration::from_secs(8)).await,
        "removal from the project it follows ends the stream"
    );
}

#[tokio::test]
async fn removal_from_the_project_or_a_revoked_key_ends_the_stream() {
    let app = spawn_app().await;
    let shared = create_project(&app, "Shared").await;
    set_role(&app, &shared, "carol", "viewer").await;
    let carol = app.key_for("carol", &[Scope::Read]).await;
    let mut stream = EventStream::open(&app, &carol, "", None).await;
    let (status, _) =
        send(app.request(Method::DELETE, &format!("/projects/{shared}/members/carol"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Whatever happens in the project from now on, carol is not told.
    app.create_entry_id(json!({"project_id": shared, "raw_name": "after.mp4"}))
        .await;
    assert!(
        stream.ends_within(Duration::from_secs(8)).await,
        "removal ends the stream"
    );

    let dave = app.key_for("dave", &[Scope::Read, Scope::Write]).await;
    let (_, keys) = send(app.request_as(&dave, Method::GET, "/api_keys")).await;
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    // Two streams of one key: rechecked together, both end.
    let mut stream = EventStream::open(&app, &dave, "", None).await;
    let mut second = EventStream::open(&app, &dave, "", None).await;
    let (status, body) =
        send(app.request_as(&dave, Method::DELETE, &format!("/api_keys/{key_id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(
        stream.ends_within(Duration::from_secs(8)).await,
        "a revoked key ends the stream"
    );
    assert!(
        second.ends_within(Duration::from_secs(8)).await,
        "a revoked key ends its every stream"
    );
}

#[tokio::test]
async fn a_bad_feed_query_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?after=abc", "after"),
        ("?after=-1", "after"),
        ("?type=entry.exploded", "type"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?project_id=nope", "project_id"),
        ("?colour=red", "colour"),
        // A cursor beyond the end never came from this feed.
        ("?after=999999", "after"),
    ] {
        let (status, body) = poll(&app, &app.api_key, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let response = app
        .get("/events")
        .header("Accept", "text/event-stream")
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) = send(app.anonymous(Method::GET, "/events")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_gone_not_a_silent_gap() {
    // Events are kept for a second; pruning runs every second.
    let app = spawn_app_with(|s| s.events.retention_days = 1.0 / 86_400.0).await;
    let entry = app.create_entry(json!({})).await;
    let first = poll_all(&app, &app.api_key, "", 1).await;
    assert_eq!(first[0]["data_id"], entry["data_id"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = poll(&app, &app.api_key, "?after=0").await;
        if status == StatusCode::GONE {
            assert_eq!(body["code"], "cursor_expired");
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the old event was never pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // From the newest cursor the feed goes on.
    let cursor = first[0]["id"].as_str().unwrap();
    let (status, body) = poll(&app, &app.api_key, &format!("?after={cursor}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _ = id_of(&entry);
}
