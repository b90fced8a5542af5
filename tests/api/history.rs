use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn every_effective_change_is_recorded_and_no_op_is_not() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"raw_size_gb": 1.5, "metadata": {"a": 1, "b": 2}}))
        .await;
    let path = format!("/data_entries/{id}");
    send(app.patch_json(
        &path,
        &json!({"pipeline_status": "running", "raw_size_gb": null}),
    ))
    .await;
    send(app.patch_json(&path, &json!({"pipeline_status": "running"}))).await; // no-op
    send(app.patch_json(
        &format!("{path}/metadata"),
        &json!({"a": null, "b": 3, "c": [1]}),
    ))
    .await;
    let response = app
        .get(&format!("{path}/history"))
        .header("X-Request-Id", "history-check")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history: Vec<Value> = response.json().await.unwrap();
    let revisions: Vec<i64> = history
        .iter()
        .map(|h| h["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(revisions, vec![3, 2, 1], "newest first, none for the no-op");
    assert_eq!(history[2]["operation"], "create");
    assert_eq!(history[1]["operation"], "update");
    assert_eq!(
        history[1]["changes"],
        json!({
            "pipeline_status": {"before": "pending", "after": "running"},
            "raw_size_gb": {"before": 1.5, "after": null}
        })
    );
    assert_eq!(
        history[0]["changes"],
        json!({"metadata": {
            "a": {"before": 1, "after": null},
            "b": {"before": 2, "after": 3},
            "c": {"before": null, "after": [1]}
        }})
    );
    for record in &history {
        assert_eq!(record["user_id"], app.user_id);
        assert!(record["key_id"].as_str().is_some());
        assert!(record["request_id"].as_str().is_some());
        assert!(record["changed_at"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn metadata_history_lists_only_the_keys_that_changed_on_merge_and_on_replace() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"keep": 1, "same": "x", "drop": true}}))
        .await;
    let metadata = format!("/data_entries/{id}/metadata");
    // "same" is named by the merge but keeps its value: not a change.
    let (status, _) = send(app.patch_json(&metadata, &json!({"same": "x", "keep": 2}))).await;
    assert_eq!(status, StatusCode::OK);
    let replacement = json!({"keep": 2, "same": "y", "new": {"n": 1}});
    let (status, _) = send(app.request(Method::PUT, &metadata).json(&replacement)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, history) = send(app.get(&format!("/data_entries/{id}/history"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        history[1]["changes"],
        json!({"metadata": {"keep": {"before": 1, "after": 2}}})
    );
    assert_eq!(
        history[0]["changes"],
        json!({"metadata": {
            "drop": {"before": true, "after": null},
            "same": {"before": "x", "after": "y"},
            "new": {"before": null, "after": {"n": 1}}
        }})
    );
}

#[tokio::test]
async fn history_records_the_request_id_and_survives_delete() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"raw_name": "doomed.mp4"})).await;
    let path = format!("/data_entries/{id}");
    let response = app
        .request(Method::DELETE, &path)
        .header("X-Request-Id", "delete-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, history) = send(app.get(&format!("{path}/history"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history[0]["operation"], "delete");
    assert_eq!(history[0]["revision"], 2);
    assert_eq!(history[0]["request_id"], "delete-42");
    assert_eq!(
        history[0]["changes"]["raw_name"],
        json!({"before": "doomed.mp4", "after": null})
    );

    let bob = app.key_for("bob", &[labcat::domain::Scope::Read]).await;
    let (status, _) = send(app.request_as(&bob, Method::GET, &format!("{path}/history"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only the owner reads it");
}

#[tokio::test]
async fn history_is_paged_with_a_link_header() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for i in 0..4 {
        send(app.patch_json(
            &format!("/data_entries/{id}"),
            &json!({"raw_name": format!("v{i}")}),
        ))
        .await;
    }
    let response = app
        .get(&format!("/data_entries/{id}/history?limit=2"))
        .send()
        .await
        .unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(
        page.iter()
            .map(|h| h["revision"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![5, 4]
    );
    let next = &link[1..link.find('>').unwrap()];
    let page: Vec<Value> = app
        .client
        .get(next)
        .header("X-API-KEY", &app.api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page.iter()
            .map(|h| h["revision"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![3, 2]
    );
}

#[tokio::test]
async fn a_change_and_its_history_row_land_together_or_not_at_all() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    // A write the database refuses (merged metadata over the key limit) leaves no trace.
    let too_many: serde_json::Map<String, Value> =
        (0..1001).map(|i| (format!("k{i}"), json!(i))).collect();
    let (status, _) = send(app.patch_json(
        &format!("/data_entries/{id}/metadata"),
        &Value::Object(too_many),
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM data_entry_history WHERE data_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows, 1, "only the create");
}

/// Rows `plan` (EXPLAIN ANALYZE, FORMAT JSON) read from `relation`: returned by its scans
/// plus those its filters threw away, over all loops.
fn rows_read(plan: &Value, relation: &str) -> f64 {
    let mut total = 0.0;
    let mut stack = vec![&plan[0]["Plan"]];
    while let Some(node) = stack.pop() {
        if node["Relation Name"] == relation {
            let loops = node["Actual Loops"].as_f64().unwrap_or(0.0);
            for counter in [
                "Actual Rows",
                "Rows Removed by Filter",
                "Rows Removed by Index Recheck",
            ] {
                total += node[counter].as_f64().unwrap_or(0.0) * loops;
            }
        }
        if let Some(children) = node["Plans"].as_array() {
            stack.extend(children);
        }
    }
    total
}

#[tokio::test]
async fn reading_someone_elses_history_reads_none_of_its_revisions() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let data_id: uuid::Uuid = id.parse().unwrap();
    // A long history (written directly: its length is the point, not how it was made).
    sqlx::query(
        "INSERT INTO data_entry_history (data_id, owner_id, revision, operation, changed_at,
                                         actor_user_id, changes)
         SELECT $1::uuid, $2, r, 'update', now(), $2, '{}' FROM generate_series(2, 2001) AS r",
    )
    .bind(&id)
    .bind(&app.user_id)
    .execute(&app.pool)
    .await
    .unwrap();
    // …among other owners' histories, as in any real catalogue.
    sqlx::query(
        "INSERT INTO data_entry_history (data_id, owner_id, revision, operation, changed_at,
                                         actor_user_id, changes)
         SELECT md5(e::text)::uuid, 'carol', r, 'update', now(), 'carol', '{}'
         FROM generate_series(1, 100) AS e, generate_series(1, 100) AS r",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE data_entries SET revision = 2001 WHERE data_id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("ANALYZE data_entry_history")
        .execute(&app.pool)
        .await
        .unwrap();
    let explain = |owner: &'static str, limit: i64| {
        let pool = app.pool.clone();
        async move {
            let access = labcat::domain::Access {
                user_id: owner,
                projects: None,
            };
            labcat::db::data_entries::explain_history(&pool, access, data_id, None, limit)
                .await
                .unwrap()
        }
    };

    let plan = explain("bob", 101).await;
    assert_eq!(rows_read(&plan, "data_entry_history"), 0.0, "{plan:#}");
    // The owner reads the page asked for through the index, not the whole history.
    let plan = explain("alice", 11).await;
    assert_eq!(rows_read(&plan, "data_entry_history"), 11.0, "{plan:#}");

    // Once the entry is deleted, whose it was comes from its newest history row alone.
    let (status, _) = send(app.request(Method::DELETE, &format!("/data_entries/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let plan = explain("bob", 101).await;
    assert!(rows_read(&plan, "data_entry_history") <= 1.0, "{plan:#}");
    let (status, history) = send(app.get(&format!("/data_entries/{id}/history?limit=3"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history[0]["operation"], "delete");
    assert_eq!(history.as_array().unwrap().len(), 3);
}
