use std::collections::BTreeMap;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn concurrent_patches_adding_different_keys_lose_none() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"seed": 0}})).await;
    let path = format!("/data_entries/{id}");
    let writers = 24;
    let responses = join_all((0..writers).map(|i| {
        app.patch_json(&path, &json!({"metadata": {format!("key_{i}"): i}}))
            .send()
    }))
    .await;
    for response in responses {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    let (_, entry) = send(app.get(&path)).await;
    let metadata = entry["metadata"].as_object().unwrap();
    assert_eq!(metadata.len(), writers + 1, "{metadata:?}");
    for i in 0..writers {
        assert_eq!(metadata[&format!("key_{i}")], json!(i));
    }
    assert_eq!(
        entry["revision"],
        json!(1 + writers),
        "one revision per change"
    );
}

#[tokio::test]
async fn concurrent_metadata_merges_and_a_put_end_in_a_serialisable_state() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"old": true}}))
        .await;
    let path = format!("/data_entries/{id}/metadata");
    let writers = 50;
    let mut requests: Vec<_> = (0..writers)
        .map(|i| app.patch_json(&path, &json!({format!("k{i}"): i})).send())
        .collect();
    requests.insert(
        writers / 2,
        app.request(Method::PUT, &path)
            .json(&json!({"replaced": true}))
            .send(),
    );
    let mut seen_by_merge = Vec::new();
    for (position, response) in join_all(requests).await.into_iter().enumerate() {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        if position != writers / 2 {
            seen_by_merge.push(body);
        }
    }
    let (_, document) = send(app.get(&path)).await;
    let document: BTreeMap<String, Value> = serde_json::from_value(document).expect("an object");
    // Serialisable means the PUT happened at one point in a total order of writes: a
    // merge that ran after it saw "replaced" and its key survives; a merge that ran
    // before it did not, and its key is gone. Nothing else may be in the document.
    assert_eq!(document.get("replaced"), Some(&json!(true)));
    assert!(!document.contains_key("old"));
    let mut expected = BTreeMap::from([("replaced".to_owned(), json!(true))]);
    for (i, body) in seen_by_merge.iter().enumerate() {
        let key = format!("k{i}");
        assert_eq!(body[&key], json!(i), "each merge sees its own key");
        if body.get("replaced").is_some() {
            expected.insert(key, json!(i));
        } else {
            assert_eq!(
                body.get("old"),
                Some(&json!(true)),
                "before the PUT: old doc"
            );
        }
    }
    assert_eq!(document, expected);
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(
        entry["revision"],
        json!(1 + writers + 1),
        "every write took effect once"
    );
}
