use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{id_of, send, spawn_app};

#[tokio::test]
async fn creating_an_entry_returns_201_location_and_the_full_row() {
    let app = spawn_app().await;
    let response = app
        .request(Method::POST, "/data_entries")
        .json(&json!({"raw_name": "scan.vms", "char_source_type": "xps", "raw_size_gb": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let entry: serde_json::Value = response.json().await.unwrap();
    assert_eq!(location, format!("/data_entries/{}", id_of(&entry)));
    assert_eq!(entry["raw_name"], "scan.vms");
    assert_eq!(entry["char_source_type"], "xps");
    assert_eq!(entry["pipeline_status"], "pending");
    assert_eq!(entry["physical_sample_id"], serde_json::Value::Null);
    assert_eq!(entry["raw_size_gb"], 0.5);
    assert_eq!(entry["user_id"], app.user_id);
    assert_eq!(entry["metadata"], json!({}));
    assert_eq!(entry["revision"], 1);
    assert_eq!(entry["version"], env!("CARGO_PKG_VERSION"));
    let uploaded = entry["upload_datetime"].as_str().unwrap();
    assert!(uploaded.ends_with('Z'), "{uploaded}");
    assert!(chrono::DateTime::parse_from_rfc3339(uploaded).is_ok());
    let fraction = uploaded.split('.').nth(1).map_or(0, |f| f.len() - 1);
    assert!(fraction <= 6, "at most 6 fractional digits: {uploaded}");

    let (status, fetched) = send(app.get(&location)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, entry);
}

#[tokio::test]
async fn creating_without_required_fields_is_a_422_naming_each() {
    let app = spawn_app().await;
    let (status, body) = send(app.request(Method::POST, "/data_entries").json(&json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"raw_name") && fields.contains(&"char_source_type"));
    let (_, list) = send(app.get("/data_entries")).await;
    assert_eq!(list, json!([]), "nothing was created");
}

#[tokio::test]
async fn the_seed_patch_updates_the_entry_and_returns_the_full_row() {
    let app = spawn_app().await;
    let created = app
        .create_entry(json!({"raw_name": "raw.mp4", "char_source_type": "xps", "raw_size_gb": 1.2}))
        .await;
    let id = id_of(&created);
    let (status, entry) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({
            "char_source_type": "rheed_video",
            "pipeline_status": "success",
            "raw_name": "rheed_video_2024_01_15.mp4"
        }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "data_id",
        "raw_name",
        "char_source_type",
        "pipeline_status",
        "physical_sample_id",
        "upload_datetime",
        "last_updated",
        "raw_size_gb",
        "user_id",
        "version",
        "metadata",
        "revision",
    ] {
        assert!(entry.get(field).is_some(), "response has {field}");
    }
    assert_eq!(entry["data_id"], created["data_id"]);
    assert_eq!(entry["char_source_type"], "rheed_video");
    assert_eq!(entry["pipeline_status"], "success");
    assert_eq!(entry["raw_name"], "rheed_video_2024_01_15.mp4");
    assert_eq!(entry["raw_size_gb"], 1.2);
    assert_eq!(entry["upload_datetime"], created["upload_datetime"]);
    assert_eq!(entry["revision"], 2);
    let before = chrono::DateTime::parse_from_rfc3339(created["last_updated"].as_str().unwrap());
    let after = chrono::DateTime::parse_from_rfc3339(entry["last_updated"].as_str().unwrap());
    assert!(after.unwrap() > before.unwrap(), "last_updated moved");
}

#[tokio::test]
async fn deleting_an_entry_returns_204_and_it_is_gone() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    let response = app.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, body) = send(app.get(&path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    let (status, _) = send(app.request(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn get_sends_an_etag_and_honours_if_none_match() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    let response = app.get(&path).send().await.unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let response = app
        .get(&path)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    app.patch_json(&path, &json!({"pipeline_status": "running"}))
        .send()
        .await
        .unwrap();
    let response = app
        .get(&path)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn fields_selects_members_of_entry_responses() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let (status, body) =
        send(app.get(&format!("/data_entries/{id}?fields=data_id,raw_name"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data_id": id, "raw_name": "sample.mp4"}));
    let (status, body) =
        send(app.get(&format!("/data_entries/{id}?fields=data_id,nonsense"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "unknown_field");
    let (status, list) = send(app.get("/data_entries?fields=pipeline_status")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([{"pipeline_status": "pending"}]));
}

#[tokio::test]
async fn paths_with_a_trailing_slash_work_too() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let (status, list) = send(app.get("/data_entries/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = send(app.get(&format!("/data_entries/{id}/"))).await;
    assert_eq!(status, StatusCode::OK);
}
