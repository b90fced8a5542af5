//! Whatever a client sends, the answer is a clear 4xx, never a 500, and nothing is written.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn malformed_json_is_a_400_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app.create_entry(json!({})).await;
    let path = format!("/data_entries/{}", created["data_id"].as_str().unwrap());
    for body in [
        "{bad",
        "",
        "   ",
        "{\"raw_name\": \"x\"",
        "{\"raw_name\": \"\\ud800\"}",
        "nul\u{0}",
    ] {
        let (status, problem) = send(
            app.request(Method::PATCH, &path)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body:?}");
        assert_eq!(problem["code"], "malformed_json");
    }
    assert_eq!(send(app.get(&path)).await.1, created);
}

#[tokio::test]
async fn json_that_is_not_an_object_is_a_422() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for body in [json!([]), json!("text"), json!(1), Value::Null] {
        let (status, problem) = send(app.patch_json(&format!("/data_entries/{id}"), &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["code"], "invalid_body");
    }
}

#[tokio::test]
async fn a_huge_body_is_a_413_naming_the_limit() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let huge = json!({"metadata": {"blob": "x".repeat(2 * 1024 * 1024)}});
    let (status, problem) = send(app.patch_json(&format!("/data_entries/{id}"), &huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem["code"], "payload_too_large");
    assert!(problem["detail"].as_str().unwrap().contains("1048576"));
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["metadata"], json!({}));
}

#[tokio::test]
async fn nul_characters_anywhere_are_a_422_not_a_500() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    for body in [
        json!({"raw_name": "a\u{0}"}),
        json!({"metadata": {"k": "v\u{0}"}}),
        json!({"metadata": {"k\u{0}": 1}}),
        json!({"metadata": {"deep": [{"x": "\u{0}"}]}}),
    ] {
        let (status, problem) = send(app.patch_json(&path, &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["code"], "nul_character");
    }
    let (status, _) = send(
        app.request(Method::POST, "/data_entries")
            .json(&json!({"raw_name": "\u{0}", "char_source_type": "xps"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(app.get("/data_entries?keywords=%00")).await;
    assert!(status.is_client_error());
    let (status, _) = send(app.get("/data_entries?metadata.k=%00")).await;
    assert!(status.is_client_error());
    let (status, _) = send(app.get("/physical_samples?name=%00")).await;
    assert!(status.is_client_error());
}

#[tokio::test]
async fn deeply_nested_json_is_a_clear_4xx() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    let deep = format!(
        "{{\"metadata\": {}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, _) = send(
        app.request(Method::PATCH, &path)
            .header("Content-Type", "application/json")
            .body(deep),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut nested = json!(1);
    for _ in 0..40 {
        nested = json!({ "n": nested });
    }
    let (status, problem) = send(app.patch_json(&path, &json!({ "metadata": nested }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "nesting_too_deep");
}

#[tokio::test]
async fn bad_uuids_in_paths_and_queries_are_4xx() {
    let app = spawn_app().await;
    for path in [
        "/data_entries/not-a-uuid",
        "/data_entries/'%20OR%201=1--",
        "/data_entries/not-a-uuid/metadata",
        "/physical_samples/xyz",
    ] {
        let (status, problem) = send(app.get(path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(problem["code"], "invalid_id");
    }
    let (status, problem) = send(app.get("/data_entries?data_ids=nope")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "data_ids");
}

#[tokio::test]
async fn wrong_types_for_every_field_are_422s() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for body in [
        json!({"raw_name": {"a": 1}}),
        json!({"pipeline_status": true}),
        json!({"physical_sample_id": 12}),
        json!({"raw_size_gb": "1.0"}),
        json!({"metadata": "string"}),
        json!({"metadata": [1, 2]}),
        json!({"metadata": 3}),
    ] {
        let (status, problem) = send(app.patch_json(&format!("/data_entries/{id}"), &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(problem["errors"][0]["message"].as_str().is_some());
    }
}
