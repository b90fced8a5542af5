use std::collections::BTreeMap;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use labcat::domain::Scope;

use crate::helpers::{metric_value, send, spawn_app};

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

/// Concurrent reads by id are answered together, several per statement; each must still
/// get exactly its own owner's entry.
#[tokio::test]
async fn concurrent_reads_by_two_owners_each_see_only_their_own_entries() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let mut owned = Vec::new(); // (key, id, raw_name)
    for i in 0..15 {
        let name = format!("alice_{i}.mp4");
        let id = app.create_entry_id(json!({"raw_name": name})).await;
        owned.push((app.api_key.clone(), id, name));
        let name = format!("bob_{i}.mp4");
        let body = json!({"raw_name": name, "char_source_type": "xps"});
        let (status, entry) = send(
            app.request_as(&bob, Method::POST, "/data_entries")
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        owned.push((
            bob.clone(),
            entry["data_id"].as_str().unwrap().to_owned(),
            name,
        ));
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let keys = [app.api_key.clone(), bob.clone()];
    // Every key asks for every entry (and a missing one), all at once, three times over.
    let mut reads = Vec::new();
    for _ in 0..3 {
        for key in &keys {
            for (_, id, _) in &owned {
                reads.push((key.clone(), id.clone()));
            }
            reads.push((key.clone(), missing.clone()));
        }
    }
    let answers =
        join_all(reads.iter().map(|(key, id)| {
            send(app.request_as(key, Method::GET, &format!("/data_entries/{id}")))
        }))
        .await;
    for ((key, id), (status, body)) in reads.iter().zip(answers) {
        match owned.iter().find(|(_, owned_id, _)| owned_id == id) {
            Some((owner, _, name)) if owner == key => {
                assert_eq!(status, StatusCode::OK, "own entry {id}");
                assert_eq!(body["data_id"], id.as_str());
                assert_eq!(body["raw_name"], name.as_str());
            }
            _ => {
                assert_eq!(status, StatusCode::NOT_FOUND, "{id} is not this key's");
                assert_eq!(body["code"], "not_found");
            }
        }
    }
    // And they were coalesced: fewer statements than reads.
    let metrics = app
        .anonymous(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let statements = metric_value(&metrics, "labcat_entry_read_batch_size_count");
    let answered = metric_value(&metrics, "labcat_entry_read_batch_size_sum");
    assert_eq!(answered, reads.len() as f64);
    assert!(
        statements < answered,
        "{statements} statements for {answered} reads"
    );
}
