use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_etag_is_the_same_whatever_fields_select() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"a": 1}})).await;
    let mut etags = Vec::new();
    for path in [
        format!("/data_entries/{id}"),
        format!("/data_entries/{id}?fields=raw_name"),
        format!("/data_entries/{id}/metadata"),
        format!("/data_entries/{id}/metadata?fields=a"),
    ] {
        let response = app.get(&path).send().await.unwrap();
        etags.push(response.headers()["etag"].to_str().unwrap().to_owned());
    }
    assert!(etags.iter().all(|etag| etag == "\"1\""), "{etags:?}");
}

#[tokio::test]
async fn of_two_clients_with_the_same_etag_exactly_one_wins() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"shared": 0}}))
        .await;
    let path = format!("/data_entries/{id}");
    let etag = app.get(&path).send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let (first, second) = tokio::join!(
        app.patch_json(
            &path,
            &json!({"raw_name": "from-a.mp4", "metadata": {"a": true}})
        )
        .header("If-Match", &etag)
        .send(),
        app.patch_json(
            &path,
            &json!({"raw_name": "from-b.mp4", "metadata": {"b": true}})
        )
        .header("If-Match", &etag)
        .send(),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED]);
    let loser = if first.status() == StatusCode::OK {
        second
    } else {
        first
    };
    assert_eq!(
        loser.headers()["etag"],
        "\"2\"",
        "the 412 carries the current ETag"
    );
    let problem: Value = loser.json().await.unwrap();
    assert_eq!(problem["code"], "precondition_failed");

    let (_, entry) = send(app.get(&path)).await;
    let winner = if entry["metadata"].get("a").is_some() {
        "a"
    } else {
        "b"
    };
    let loser_key = if winner == "a" { "b" } else { "a" };
    assert_eq!(entry["raw_name"], format!("from-{winner}.mp4"));
    assert!(
        entry["metadata"].get(loser_key).is_none(),
        "nothing of the loser landed"
    );
    assert_eq!(entry["revision"], 2);
}

#[tokio::test]
async fn if_match_applies_to_metadata_writes_and_delete() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let stale = "\"7\"";
    let (status, _) = send(
        app.request(Method::PUT, &format!("/data_entries/{id}/metadata"))
            .header("If-Match", stale)
            .json(&json!({"x": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _) = send(
        app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"x": 1}))
            .header("If-Match", "W/\"1\""),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_FAILED,
        "weak tags never match"
    );
    let (status, _) = send(
        app.request(Method::DELETE, &format!("/data_entries/{id}"))
            .header("If-Match", stale),
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, _) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "not deleted");
    let (status, _) = send(
        app.patch_json(&format!("/data_entries/{id}/metadata"), &json!({"x": 1}))
            .header("If-Match", "\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        app.request(Method::DELETE, &format!("/data_entries/{id}"))
            .header("If-Match", "*"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_no_op_write_keeps_the_etag_even_with_if_match() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"pipeline_status": "success"}))
        .await;
    let response = app
        .patch_json(
            &format!("/data_entries/{id}"),
            &json!({"pipeline_status": "success"}),
        )
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"1\"");
}

#[tokio::test]
async fn a_configured_server_requires_if_match_on_writes() {
    let app = spawn_app_with(|settings| settings.writes.require_if_match = true).await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    for request in [
        app.patch_json(&path, &json!({"raw_name": "x"})),
        app.request(Method::PUT, &format!("{path}/metadata"))
            .json(&json!({})),
        app.request(Method::DELETE, &path),
    ] {
        let (status, problem) = send(request).await;
        assert_eq!(status, StatusCode::PRECONDITION_REQUIRED);
        assert_eq!(problem["code"], "precondition_required");
    }
    let (status, _) = send(
        app.patch_json(&path, &json!({"raw_name": "x"}))
            .header("If-Match", "\"1\""),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
