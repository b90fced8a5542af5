use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app};

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
