use std::time::{Duration, Instant};

use labcat::domain::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_replayed_post_creates_one_entry_and_gets_the_same_response() {
    let app = spawn_app().await;
    let body = json!({"raw_name": "once.mp4", "char_source_type": "sem"});
    let mut responses = Vec::new();
    for _ in 0..3 {
        let response = app
            .request(Method::POST, "/data_entries")
            .header("Idempotency-Key", "upload-7f3a")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let replayed = response.headers().contains_key("idempotency-replayed");
        let body: Value = response.json().await.unwrap();
        responses.push((status, location, body, replayed));
    }
    assert!(responses.iter().all(|r| r.0 == StatusCode::CREATED));
    assert!(
        responses
            .windows(2)
            .all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2)
    );
    assert_eq!(
        responses.iter().map(|r| r.3).collect::<Vec<_>>(),
        vec![false, true, true]
    );
    let (_, list) = send(app.get("/data_entries")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_a_422() {
    let app = spawn_app().await;
    let send_with = |raw_name: &str| {
        app.request(Method::POST, "/data_entries")
            .header("Idempotency-Key", "k1")
            .json(&json!({"raw_name": raw_name, "char_source_type": "sem"}))
    };
    assert_eq!(send(send_with("a")).await.0, StatusCode::CREATED);
    let (status, problem) = send(send_with("b")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "idempotency_key_reused");
    let (_, list) = send(app.get("/data_entries")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_while_the_first_is_running_is_a_409() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    // Hold the row lock so the first PATCH blocks inside the database.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let patch = || {
        app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"pipeline_status": "running"}),
        )
        .header("Idempotency-Key", "slow-1")
    };
    let first = tokio::spawn(patch().send());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, problem) = send(patch()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["code"], "idempotency_in_progress");
    blocker.rollback().await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (status, entry) = send(patch()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["revision"], 2, "replayed, not applied twice");
}

#[tokio::test]
async fn keys_are_per_caller_and_expire() {
    let app = crate::helpers::spawn_app_with(|s| s.writes.idempotency_ttl_seconds = 1).await;
    let post = |key: &str| {
        app.request_as(key, Method::POST, "/data_entries")
            .header("Idempotency-Key", "same")
            .json(&json!({"raw_name": "x", "char_source_type": "sem"}))
    };
    let bob = app
        .key_for(
            "bob",
            &[labcat::domain::Scope::Read, labcat::domain::Scope::Write],
        )
        .await;
    let (_, first) = send(post(&app.api_key)).await;
    let (_, bobs) = send(post(&bob)).await;
    assert_ne!(
        first["data_id"], bobs["data_id"],
        "bob's key space is his own"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, again) = send(post(&app.api_key)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(
        again["data_id"], first["data_id"],
        "an expired key is forgotten"
    );
}

/// Found by probing: keys were kept per user, so a read-only key's 403 was replayed to the
/// same user's read-write key, and a read-write key's 201 to the other keys.
#[tokio::test]
async fn a_stored_answer_is_replayed_only_to_the_api_key_that_made_it() {
    let app = spawn_app().await;
    let reader = app.key_for(&app.user_id, &[Scope::Read]).await;
    let other_writer = app
        .key_for(&app.user_id, &[Scope::Read, Scope::Write])
        .await;
    let post = |key: &str| {
        app.request_as(key, Method::POST, "/data_entries")
            .header("Idempotency-Key", "shared-key")
            .json(&json!({"raw_name": "x", "char_source_type": "sem"}))
    };
    let (status, _) = send(post(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut created = Vec::new();
    for key in [&app.api_key, &other_writer] {
        let response = post(key).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "not the reader's 403"
        );
        assert!(!response.headers().contains_key("idempotency-replayed"));
        let entry: Value = response.json().await.unwrap();
        created.push(entry["data_id"].clone());
    }
    assert_ne!(created[0], created[1], "each key ran its own request");
    let response = post(&reader).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "not a writer's 201"
    );
    let (_, list) = send(app.get("/data_entries")).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

/// Sends the same write twice with one key; returns both responses' status, replay flag
/// and body.
async fn twice(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Vec<(StatusCode, bool, reqwest::header::HeaderMap, String)> {
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut request = app
            .request(method.clone(), path)
            .header("Idempotency-Key", key);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let replayed = headers
            .get("idempotency-replayed")
            .is_some_and(|value| value == "true");
        answers.push((status, replayed, headers, response.text().await.unwrap()));
    }
    answers
}

/// Found by probing: `/v2` writes and `PUT` ignored `Idempotency-Key`.
#[tokio::test]
async fn put_delete_and_every_kind_of_v2_write_replay_instead_of_writing_again() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"k": 1}})).await;
    let writes = [
        (
            Method::PUT,
            format!("/data_entries/{id}/metadata"),
            json!({"a": 1}),
        ),
        (
            Method::PATCH,
            format!("/v2/files/{id}"),
            json!({"name": "renamed"}),
        ),
        (
            Method::PATCH,
            format!("/v2/files/{id}/metadata"),
            json!({"b": 2}),
        ),
        (
            Method::PUT,
            format!("/v2/files/{id}/metadata"),
            json!({"c": 3}),
        ),
        (Method::PUT, format!("/v2/files/{id}/tags"), json!(["t1"])),
        (
            Method::POST,
            "/v2/bulk/files/edit".to_owned(),
            json!({"items": [{"id": id, "name": "edited"}]}),
        ),
    ];
    for (n, (method, path, body)) in writes.into_iter().enumerate() {
        let answers = twice(&app, method.clone(), &path, &format!("k{n}"), Some(body)).await;
        let (first, second) = (&answers[0], &answers[1]);
        assert_eq!(first.0, StatusCode::OK, "{method} {path}: {}", first.3);
        assert!(!first.1, "{method} {path}: the first is not a replay");
        assert_eq!(second.0, first.0, "{method} {path}");
        assert!(second.1, "{method} {path}: replayed");
        assert_eq!(second.3, first.3, "{method} {path}: the same body");
        if path.starts_with("/v2/") {
            assert!(second.2.contains_key("x-ratelimit-remaining"), "{path}");
        }
    }
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(
        entry["revision"], 7,
        "six writes, each applied once: {entry}"
    );

    for (n, path) in [
        format!("/v2/files/{id}"),
        format!("/data_entries/{}", app.create_entry_id(json!({})).await),
    ]
    .into_iter()
    .enumerate()
    {
        let answers = twice(&app, Method::DELETE, &path, &format!("d{n}"), None).await;
        assert_eq!(answers[0].0, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(answers[1].0, StatusCode::NO_CONTENT, "{path}: not a 404");
        assert!(answers[1].1, "{path}: replayed");
    }
}

#[tokio::test]
async fn on_v2_a_reused_key_is_a_seven_bridges_400() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let patch = |name: &str| {
        app.request(Method::PATCH, &format!("/v2/files/{id}"))
            .header("Idempotency-Key", "v2-key")
            .json(&json!({"name": name}))
    };
    assert_eq!(send(patch("a")).await.0, StatusCode::OK);
    let response = patch("b").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().contains_key("x-ratelimit-limit"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 90000, "{body}");
    assert!(
        body["more_info"]
            .as_str()
            .unwrap()
            .contains("idempotency_key_reused"),
        "{body}"
    );
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["raw_name"], "a");
}

/// The claim is one statement: of many requests racing for one key, exactly one runs; the
/// others are told it is running (409) while it does.
#[tokio::test]
async fn of_concurrent_requests_with_one_key_exactly_one_runs() {
    const RACERS: usize = 12;
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    // Hold the entry so whichever request claims the key stays inside its write.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..RACERS {
        let request = app
            .patch_json(
                &format!("/data_entries/{id}"),
                &json!({"pipeline_status": "running"}),
            )
            .header("Idempotency-Key", "raced");
        let answers = answers.clone();
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            answers.send((status, body)).unwrap();
        });
    }
    // Every request but the one running answers without waiting for it.
    for _ in 1..RACERS {
        let (status, body) = answered.recv().await.unwrap();
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "idempotency_in_progress");
    }
    blocker.rollback().await.unwrap();
    let (status, entry) = answered.recv().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["revision"], 2);
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["revision"], 2, "applied once");
}

/// Found by review: the idempotency layer sat outside CORS, so a page could not read a
/// replayed answer (or the refusal of a reused key).
#[tokio::test]
async fn replays_and_refusals_carry_cors_headers() {
    let origin = "https://catalogue.example.org";
    let app = spawn_app_with(|s| s.cors.allowed_origins = vec![origin.into()]).await;
    let post = |name: &str| {
        app.request(Method::POST, "/data_entries")
            .header("Origin", origin)
            .header("Idempotency-Key", "page-1")
            .json(&json!({"raw_name": name, "char_source_type": "sem"}))
    };
    assert_eq!(send(post("a")).await.0, StatusCode::CREATED);
    let replayed = post("a").send().await.unwrap();
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
    assert_eq!(replayed.headers()["access-control-allow-origin"], origin);
    let exposed = replayed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("idempotency-replayed"), "{exposed}");
    let refused = post("b").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.headers()["access-control-allow-origin"], origin);
}

/// Found by review: the idempotency layer sat outside the request time limit, so a claim
/// waiting on the database held the client until the statement timeout (25 s).
#[tokio::test]
async fn a_claim_waiting_on_the_database_is_cut_off_by_the_request_time_limit() {
    let app = spawn_app_with(|s| s.server.request_timeout_ms = 300).await;
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = Instant::now();
    let response = app
        .request(Method::POST, "/data_entries")
        .header("Idempotency-Key", "stuck")
        .json(&json!({"raw_name": "x", "char_source_type": "sem"}))
        // Unbounded, the claim would wait for the lock as long as it is held.
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    lock.rollback().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

/// A request cut off by the time limit gives its key back, so the client's retry runs
/// rather than being told "in progress" for the key's lifetime.
#[tokio::test]
async fn a_request_cut_off_by_the_time_limit_gives_its_key_back() {
    let app = spawn_app_with(|s| s.server.request_timeout_ms = 300).await;
    let id = app.create_entry_id(json!({})).await;
    let patch = || {
        app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"pipeline_status": "running"}),
        )
        .header("Idempotency-Key", "cut-off")
    };
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *lock)
        .await
        .unwrap();
    assert_eq!(send(patch()).await.0, StatusCode::SERVICE_UNAVAILABLE);
    lock.rollback().await.unwrap();
    // The key is given back off the request path, so a retry at once may still see it.
    let released = Instant::now();
    loop {
        let response = patch().send().await.unwrap();
        if response.status() != StatusCode::CONFLICT {
            assert_eq!(response.status(), StatusCode::OK);
            assert!(!response.headers().contains_key("idempotency-replayed"));
            break;
        }
        assert!(
            released.elapsed() < Duration::from_secs(5),
            "the key is still held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Expired keys are deleted by a background task, not by the requests that come later.
#[tokio::test]
async fn expired_keys_are_pruned_without_any_request() {
    let app = crate::helpers::spawn_app_with(|s| s.writes.idempotency_ttl_seconds = 1).await;
    let (status, _) = send(
        app.request(Method::POST, "/data_entries")
            .header("Idempotency-Key", "short-lived")
            .json(&json!({"raw_name": "x", "char_source_type": "sem"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM idempotency_keys")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(stored().await, 1);
    let started = Instant::now();
    while stored().await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an expired key is still stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn minting_a_key_with_an_idempotency_key_is_refused_so_no_secret_is_stored() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/api_keys")
        .header("Idempotency-Key", "mint-1")
        .json(&json!({"name": "ci", "scopes": ["read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let (_, keys) = send(app.get("/api_keys")).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "only the test's own key");
}
