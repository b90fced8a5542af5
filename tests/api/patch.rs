use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};

async fn entry(app: &TestApp, id: &str) -> Value {
    send(app.get(&format!("/data_entries/{id}"))).await.1
}

#[tokio::test]
async fn an_unknown_field_is_a_422_and_changes_nothing() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let before = entry(&app, &id).await;
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"pipeline_status": "success", "colour": "blue"}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "unknown_field");
    assert_eq!(body["errors"][0]["field"], "colour");
    assert_eq!(
        entry(&app, &id).await,
        before,
        "the valid part was not applied"
    );
}

#[tokio::test]
async fn a_bad_enum_value_is_a_422_listing_the_allowed_values() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"pipeline_status": "finished"}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_enum_value");
    assert_eq!(body["errors"][0]["field"], "pipeline_status");
    assert_eq!(
        body["errors"][0]["allowed_values"],
        json!(["success", "pending", "error", "running"])
    );
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"char_source_type": 7}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"][0]["allowed_values"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

#[tokio::test]
async fn the_database_refuses_bad_enum_values_from_any_writer() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let result = sqlx::query(
        "UPDATE data_entries SET pipeline_status = 'finished' WHERE data_id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn null_clears_nullable_fields_and_is_a_422_on_required_ones() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"raw_size_gb": 2.5})).await;
    let path = format!("/data_entries/{id}");
    let (status, body) = send(app.patch_json(&path, &json!({"raw_size_gb": null}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["raw_size_gb"], Value::Null);

    for field in [
        "raw_name",
        "char_source_type",
        "pipeline_status",
        "metadata",
    ] {
        let (status, body) = send(app.patch_json(&path, &json!({ field: null }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(body["code"], "null_not_allowed", "{field}");
    }
    let after = entry(&app, &id).await;
    assert_eq!(after["raw_name"], "sample.mp4");
}

#[tokio::test]
async fn absent_fields_are_left_alone() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(
            json!({"raw_size_gb": 3.0, "pipeline_status": "running", "metadata": {"k": 1}}),
        )
        .await;
    let (_, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"raw_name": "new.mp4"}),
    ))
    .await;
    assert_eq!(body["raw_name"], "new.mp4");
    assert_eq!(body["raw_size_gb"], 3.0);
    assert_eq!(body["pipeline_status"], "running");
    assert_eq!(body["metadata"], json!({"k": 1}));
}

#[tokio::test]
async fn an_empty_patch_or_one_equal_to_the_current_values_changes_nothing() {
    let app = spawn_app().await;
    let created = app
        .create_entry(json!({"pipeline_status": "success", "metadata": {"a": {"b": 1}}}))
        .await;
    let id = created["data_id"].as_str().unwrap();
    let path = format!("/data_entries/{id}");
    for patch in [
        json!({}),
        json!({"pipeline_status": "success", "raw_name": "sample.mp4"}),
        json!({"metadata": {}}),
        json!({"metadata": {"a": {"b": 1}, "gone": null}}),
        json!({"raw_size_gb": null}),
    ] {
        let response = app.patch_json(&path, &patch).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{patch}");
        assert_eq!(response.headers()["etag"], "\"1\"", "{patch}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, created, "no-op {patch}");
    }
}

#[tokio::test]
async fn metadata_in_an_entry_patch_is_merged_per_rfc_7396() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {
            "operator": "ana", "beam": {"energy_kev": 15, "current_na": 2}, "tags": ["a", "b"]
        }}))
        .await;
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"metadata": {"beam": {"current_na": null, "angle": 1.5}, "tags": ["c"], "operator": null, "new": true}}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["metadata"],
        json!({"beam": {"energy_kev": 15, "angle": 1.5}, "tags": ["c"], "new": true})
    );
    assert_eq!(body["revision"], 2);
}

#[tokio::test]
async fn merge_patch_content_type_is_accepted_and_others_get_415() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    let response = app
        .request(Method::PATCH, &path)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"pipeline_status": "error"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = send(
        app.request(Method::PATCH, &path)
            .header("Content-Type", "text/plain")
            .body(r#"{"pipeline_status": "success"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["code"], "unsupported_media_type");
    assert_eq!(entry(&app, &id).await["pipeline_status"], "error");
}

#[tokio::test]
async fn read_only_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"user_id": "mallory"}),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "read_only_field");
    assert_eq!(entry(&app, &id).await["user_id"], app.user_id);
}

#[tokio::test]
async fn physical_sample_id_must_name_a_sample_the_caller_owns() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    let (_, sample) = send(
        app.request(Method::POST, "/physical_samples")
            .json(&json!({"name": "GaN-001"})),
    )
    .await;
    let sample_id = sample["id"].as_str().unwrap().to_owned();
    let (status, body) =
        send(app.patch_json(&path, &json!({"physical_sample_id": sample_id}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["physical_sample_id"], sample_id.as_str());

    let bob = app
        .key_for(
            "bob",
            &[labcat::domain::Scope::Write, labcat::domain::Scope::Read],
        )
        .await;
    let (_, bobs) = send(
        app.request_as(&bob, Method::POST, "/physical_samples")
            .json(&json!({"name": "bob's"})),
    )
    .await;
    for other in [
        bobs["id"].clone(),
        json!(uuid::Uuid::new_v4()),
        json!("not-a-uuid"),
    ] {
        let (status, body) =
            send(app.patch_json(&path, &json!({"physical_sample_id": other}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{other}");
        assert_eq!(body["errors"][0]["field"], "physical_sample_id");
    }
    let (status, body) = send(app.patch_json(&path, &json!({"physical_sample_id": null}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["physical_sample_id"], Value::Null);
}

#[tokio::test]
async fn raw_size_must_be_a_non_negative_number() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for bad in [json!(-1), json!("big"), json!([1])] {
        let (status, _) =
            send(app.patch_json(&format!("/data_entries/{id}"), &json!({"raw_size_gb": bad})))
                .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn raw_name_must_be_1_to_1024_characters_without_nul() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/data_entries/{id}");
    for bad in [
        json!(""),
        json!("x".repeat(1025)),
        json!("a\u{0}b"),
        json!(5),
    ] {
        let (status, _) = send(app.patch_json(&path, &json!({"raw_name": bad}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, body) = send(app.patch_json(&path, &json!({"raw_name": "é".repeat(1024)}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["raw_name"].as_str().unwrap().chars().count(), 1024);
}
