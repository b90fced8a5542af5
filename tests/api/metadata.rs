use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};

async fn metadata_of(app: &TestApp, id: &str) -> Value {
    send(app.get(&format!("/data_entries/{id}/metadata")))
        .await
        .1
}

#[tokio::test]
async fn patch_merges_only_the_keys_sent() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"sample": "s1", "lab": "L2"}}))
        .await;
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}/metadata"),
        &json!({"foo": "bar"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"sample": "s1", "lab": "L2", "foo": "bar"}));
    assert_eq!(metadata_of(&app, &id).await, body);
}

#[tokio::test]
async fn put_replaces_the_whole_document() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"sample": "s1", "lab": "L2"}}))
        .await;
    let response = app
        .request(Method::PUT, &format!("/data_entries/{id}/metadata"))
        .json(&json!({"foo": "bar", "n": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"foo": "bar", "n": null}));
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["metadata"], body);
    assert_eq!(entry["revision"], 2);
}

#[tokio::test]
async fn deep_merge_deletes_with_null_and_replaces_arrays() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(
            json!({"metadata": {"a": {"b": {"c": 1, "d": 2}, "e": [1, 2]}, "keep": 1}}),
        )
        .await;
    let (_, body) = send(app.patch_json(
        &format!("/data_entries/{id}/metadata"),
        &json!({"a": {"b": {"c": null, "x": {"y": "z"}}, "e": [3]}}),
    ))
    .await;
    assert_eq!(
        body,
        json!({"a": {"b": {"d": 2, "x": {"y": "z"}}, "e": [3]}, "keep": 1})
    );
}

#[tokio::test]
async fn a_no_op_metadata_write_keeps_revision_and_last_updated() {
    let app = spawn_app().await;
    let created = app.create_entry(json!({"metadata": {"a": 1}})).await;
    let id = created["data_id"].as_str().unwrap();
    let path = format!("/data_entries/{id}/metadata");
    send(app.patch_json(&path, &json!({"a": 1, "missing": null}))).await;
    send(app.request(Method::PUT, &path).json(&json!({"a": 1}))).await;
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["revision"], 1);
    assert_eq!(entry["last_updated"], created["last_updated"]);
}

#[tokio::test]
async fn fields_on_metadata_selects_keys() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"a": 1, "b": 2, "c": 3}}))
        .await;
    let (status, body) =
        send(app.get(&format!("/data_entries/{id}/metadata?fields=a,c,zzz"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"a": 1, "c": 3}));
}

#[tokio::test]
async fn non_object_metadata_is_a_422() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for body in [json!([1]), json!("s"), json!(2)] {
        let (status, _) = send(
            app.request(Method::PUT, &format!("/data_entries/{id}/metadata"))
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, _) = send(
        app.request(Method::POST, "/data_entries")
            .json(&json!({"raw_name": "x", "char_source_type": "xps", "metadata": [1]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn limits_are_configurable_and_each_names_itself() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.limits.metadata.max_keys = 3;
        settings.limits.metadata.max_depth = 3;
        settings.limits.metadata.max_key_length = 8;
        settings.limits.metadata.max_bytes = 200;
    })
    .await;
    let id = app
        .create_entry_id(json!({"metadata": {"a": 1, "b": 2}}))
        .await;
    let path = format!("/data_entries/{id}/metadata");
    let cases = [
        (json!({"a": 1, "b": 2, "c": 3, "d": 4}), "too_many_keys"),
        (json!({"x": {"y": {"z": {}}}}), "nesting_too_deep"),
        (json!({"much_too_long_key": 1}), "key_too_long"),
        (json!({"a": "x".repeat(300)}), "metadata_too_large"),
        // Each patch is fine alone, but the merged document would break the limit.
        (json!({"c": 3, "d": 4}), "too_many_keys"),
        (json!({"c": "y".repeat(190)}), "metadata_too_large"),
    ];
    for (body, code) in cases {
        let (status, problem) = send(app.patch_json(&path, &body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["code"], code, "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains("limit")
                || problem["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains(|c: char| c.is_ascii_digit())
        );
    }
    assert_eq!(
        metadata_of(&app, &id).await,
        json!({"a": 1, "b": 2}),
        "nothing applied"
    );
    let (status, _) = send(app.patch_json(&path, &json!({"c": 3}))).await;
    assert_eq!(status, StatusCode::OK);
}
