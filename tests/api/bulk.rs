use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_bad_item_in_the_middle_is_reported_and_the_others_applied() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({})).await;
    let b = app.create_entry_id(json!({})).await;
    let c = app.create_entry_id(json!({})).await;
    let (status, results) = send(app.request(Method::PATCH, "/data_entries").json(&json!([
        {"data_id": a, "pipeline_status": "success"},
        {"data_id": b, "pipeline_status": "finished"},
        {"data_id": c, "metadata": {"x": 1}},
        {"data_id": uuid::Uuid::new_v4(), "raw_name": "ghost"},
    ])))
    .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<i64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 422, 200, 404]);
    assert_eq!(results[0]["entry"]["pipeline_status"], "success");
    assert_eq!(results[1]["problem"]["code"], "invalid_enum_value");
    assert_eq!(results[1]["data_id"], b.as_str());
    assert_eq!(results[2]["entry"]["metadata"], json!({"x": 1}));
    let (_, entry_b) = send(app.get(&format!("/data_entries/{b}"))).await;
    assert_eq!(entry_b["revision"], 1);
}

#[tokio::test]
async fn an_atomic_batch_with_a_bad_item_applies_nothing() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({})).await;
    let b = app.create_entry_id(json!({})).await;
    let missing = uuid::Uuid::new_v4();
    for bad in [
        json!({"data_id": b, "pipeline_status": "finished"}),
        json!({"data_id": missing, "pipeline_status": "success"}),
    ] {
        let (status, problem) = send(
            app.request(Method::PATCH, "/data_entries?atomic=true")
                .json(&json!([{"data_id": a, "pipeline_status": "success", "metadata": {"k": 1}}, bad])),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(
            problem["errors"][0]["field"]
                .as_str()
                .unwrap()
                .starts_with("[1]")
        );
        let (_, entry_a) = send(app.get(&format!("/data_entries/{a}"))).await;
        assert_eq!(entry_a["revision"], 1, "the good item was rolled back");
        assert_eq!(entry_a["metadata"], json!({}));
    }
    let (status, results) = send(
        app.request(Method::PATCH, "/data_entries?atomic=true")
            .json(&json!([{"data_id": a, "pipeline_status": "success"}, {"data_id": b, "raw_name": "y"}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results.as_array().unwrap().len(), 2);
    let history: i64 =
        sqlx::query_scalar("SELECT count(*) FROM data_entry_history WHERE operation = 'update'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(history, 2, "history only for the committed batch");
}

#[tokio::test]
async fn bulk_requests_are_limited_and_must_be_arrays() {
    let app = crate::helpers::spawn_app_with(|s| s.writes.bulk_max_items = 2).await;
    let items: Vec<Value> = (0..3)
        .map(|_| json!({"data_id": uuid::Uuid::new_v4()}))
        .collect();
    let (status, problem) = send(app.request(Method::PATCH, "/data_entries").json(&items)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "too_many_items");
    assert_eq!(problem["errors"][0]["field"], "body");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 2 items") && message.contains("writes.bulk_max_items"),
        "{message}"
    );
    let (status, _) = send(
        app.request(Method::PATCH, "/data_entries")
            .json(&json!({"data_id": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, results) = send(
        app.request(Method::PATCH, "/data_entries")
            .json(&json!([{"pipeline_status": "success"}])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(results[0]["status"], 422);
    assert_eq!(results[0]["problem"]["code"], "missing_field");
}

#[tokio::test]
async fn an_entry_named_twice_in_a_bulk_patch_is_a_400_naming_it_and_its_positions() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({})).await;
    let b = app.create_entry_id(json!({})).await;
    for query in ["", "?atomic=true"] {
        let (status, problem) = send(
            app.request(Method::PATCH, &format!("/data_entries{query}"))
                .json(&json!([
                    {"data_id": a, "pipeline_status": "success"},
                    {"data_id": b, "pipeline_status": "success"},
                    {"data_id": a.to_uppercase(), "raw_name": "again"},
                    {"data_id": a},
                ])),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(problem["code"], "duplicate_item");
        let errors = problem["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{problem}");
        assert_eq!(errors[0]["field"], "[2].data_id");
        let message = errors[0]["message"].as_str().unwrap();
        assert!(
            message.contains(&a) && message.contains("positions 0, 2, 3"),
            "{message}"
        );
    }
    for id in [&a, &b] {
        let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
        assert_eq!(entry["revision"], 1, "nothing was applied");
    }
}

/// The `"write";r=<left>` member of a response's `RateLimit` header.
fn tokens_left(response: &reqwest::Response) -> u64 {
    let header = response.headers()["ratelimit"].to_str().unwrap();
    let left = header.split(';').find_map(|part| part.strip_prefix("r="));
    left.unwrap_or_else(|| panic!("no r= in {header}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_bulk_patch_of_n_items_costs_n_write_tokens() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.write_per_second = 1;
        settings.rate_limit.write_burst = 10;
    })
    .await;
    let items = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({"data_id": uuid::Uuid::new_v4(), "raw_name": "x"}))
            .collect()
    };
    let response = app
        .request(Method::PATCH, "/data_entries")
        .json(&items(8))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(tokens_left(&response) <= 2, "8 of the 10 tokens are spent");

    let response = app
        .request(Method::PATCH, "/data_entries")
        .json(&items(5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
}

#[tokio::test]
async fn a_bulk_larger_than_the_rate_limit_bucket_is_a_400_naming_the_bucket() {
    let app = spawn_app_with(|settings| settings.rate_limit.write_burst = 5).await;
    let items: Vec<Value> = (0..6)
        .map(|_| json!({"data_id": uuid::Uuid::new_v4()}))
        .collect();
    let (status, problem) = send(app.request(Method::PATCH, "/data_entries").json(&items)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "too_many_items");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 5 items") && message.contains("rate_limit.write_burst"),
        "{message}"
    );
}
