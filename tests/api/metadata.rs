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

#[tokio::test]
async fn a_document_accepted_at_create_still_takes_small_merges_on_every_write_path() {
    let app = spawn_app().await;
    // ~200 KB as compact JSON, ~300 KB as PostgreSQL prints it ("1, 1, …").
    let big = json!({"a": vec![1; 100_000]});
    let id = app.create_entry_id(json!({"metadata": big})).await;
    let metadata = format!("/data_entries/{id}/metadata");
    let v2 = |method: Method, path: &str| {
        app.anonymous(method, &format!("/v2{path}"))
            .header("X-SBG-Auth-Token", &app.api_key)
    };

    let (status, body) = send(app.patch_json(&metadata, &json!({"b": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{}", body["detail"]);
    let (status, body) = send(app.patch_json(
        &format!("/data_entries/{id}"),
        &json!({"metadata": {"c": 1}}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{}", body["detail"]);
    let (status, body) = send(app.request(Method::PATCH, "/data_entries").json(&json!([
        {"data_id": id, "metadata": {"d": 1}},
    ])))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["status"], 200, "{}", body[0]["problem"]);
    let (status, body) =
        send(v2(Method::PATCH, &format!("/files/{id}/metadata")).json(&json!({"e": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{}", body["message"]);
    let (status, body) = send(v2(Method::POST, "/bulk/files/edit").json(&json!({"items": [
        {"id": id, "metadata": {"f": 1}},
    ]})))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["items"][0]["resource"].is_object(), "{body}");
    let mut replacement = big.clone();
    replacement["g"] = json!(1);
    let (status, body) = send(app.request(Method::PUT, &metadata).json(&replacement)).await;
    assert_eq!(status, StatusCode::OK, "{}", body["detail"]);

    let stored = metadata_of(&app, &id).await;
    assert_eq!(stored, replacement);
}

/// `{"s": "xx…x", "t": 1}` whose compact JSON is `bytes` long.
fn document_of_size(bytes: usize) -> Value {
    let overhead = r#"{"s":"","t":1}"#.len();
    let document = json!({"s": "x".repeat(bytes - overhead), "t": 1});
    assert_eq!(serde_json::to_string(&document).unwrap().len(), bytes);
    document
}

/// Every way to write a metadata document. The merges (`… merge`, `v2 bulk edit`) start
/// from an entry holding all of the document but `"t"`, and send `{"t": 1}`.
const WRITE_PATHS: &[&str] = &[
    "create",
    "PUT",
    "PATCH metadata",
    "PATCH entry",
    "merge",
    "bulk PATCH",
    "v2 PATCH file",
    "v2 PUT metadata",
    "v2 merge",
    "v2 bulk update",
    "v2 bulk edit",
];

/// Writes `document` by `path` (on an entry of its own) and returns the status and, when
/// refused, the error's code and message; checks that a refused write changed nothing.
async fn write_by(app: &TestApp, path: &str, document: &Value) -> (u16, Value, Value) {
    if path == "create" {
        let body = json!({"raw_name": "m", "char_source_type": "sem", "metadata": document});
        let (status, problem) = send(app.request(Method::POST, "/data_entries").json(&body)).await;
        return (
            status.as_u16(),
            problem["code"].clone(),
            problem["errors"][0]["message"].clone(),
        );
    }
    let merging = path.ends_with("merge") || path.ends_with("edit");
    let (start, change) = if merging {
        (json!({"s": document["s"]}), json!({"t": 1}))
    } else {
        (json!({}), document.clone())
    };
    let id = app.create_entry_id(json!({"metadata": start})).await;
    let v2 = |method: Method, path: &str| {
        app.anonymous(method, &format!("/v2{path}"))
            .header("X-SBG-Auth-Token", &app.api_key)
    };
    let metadata = format!("/data_entries/{id}/metadata");
    let items = json!({"items": [{"id": id, "metadata": change}]});
    let request = match path {
        "PUT" => app.request(Method::PUT, &metadata).json(&change),
        "PATCH metadata" | "merge" => app.patch_json(&metadata, &change),
        "PATCH entry" => {
            app.patch_json(&format!("/data_entries/{id}"), &json!({"metadata": change}))
        }
        "bulk PATCH" => app
            .request(Method::PATCH, "/data_entries")
            .json(&json!([{"data_id": id, "metadata": change}])),
        "v2 PATCH file" => {
            v2(Method::PATCH, &format!("/files/{id}")).json(&json!({"metadata": change}))
        }
        "v2 PUT metadata" => v2(Method::PUT, &format!("/files/{id}/metadata")).json(&change),
        "v2 merge" => v2(Method::PATCH, &format!("/files/{id}/metadata")).json(&change),
        "v2 bulk update" => v2(Method::POST, "/bulk/files/update").json(&items),
        "v2 bulk edit" => v2(Method::POST, "/bulk/files/edit").json(&items),
        other => unreachable!("{other}"),
    };
    let (status, body) = send(request).await;
    // Bulk answers carry each item's own status and error.
    let (status, error) = match path {
        "bulk PATCH" => (
            body[0]["status"].as_u64().unwrap() as u16,
            body[0]["problem"].clone(),
        ),
        "v2 bulk update" | "v2 bulk edit" => match &body["items"][0]["error"] {
            Value::Null => (status.as_u16(), Value::Null),
            error => (error["status"].as_u64().unwrap() as u16, error.clone()),
        },
        _ => (status.as_u16(), body),
    };
    let message = if path.starts_with("v2") {
        error["message"].clone()
    } else {
        error["errors"][0]["message"].clone()
    };
    let stored = metadata_of(app, &id).await;
    if status >= 400 {
        assert_eq!(stored, start, "{path}: a refused write changes nothing");
    } else {
        assert_eq!(&stored, document, "{path}");
    }
    (status, error["code"].clone(), message)
}

#[tokio::test]
async fn one_size_measure_decides_every_write_path_alike() {
    const LIMIT: usize = 1000;
    let app = crate::helpers::spawn_app_with(|s| s.limits.metadata.max_bytes = LIMIT).await;
    // At the limit as compact JSON; over it as PostgreSQL prints it ({"s": "…", "t": 1}).
    let at_limit = document_of_size(LIMIT);
    for path in WRITE_PATHS {
        let (status, _, message) = write_by(&app, path, &at_limit).await;
        assert!(
            status < 300,
            "{path} refused a document at the limit: {message}"
        );
    }
    let over_limit = document_of_size(LIMIT + 1);
    let expected = format!(
        "metadata would be {} bytes as compact JSON; the limit is {LIMIT} bytes",
        LIMIT + 1
    );
    for path in WRITE_PATHS {
        let (status, code, message) = write_by(&app, path, &over_limit).await;
        let refusal = if path.starts_with("v2") {
            (400, json!(5006))
        } else {
            (422, json!("metadata_too_large"))
        };
        assert_eq!((status, code), refusal, "{path}: {message}");
        assert_eq!(message, expected.as_str(), "{path}");
    }
}
