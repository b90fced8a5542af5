use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|e| e["data_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(app: &TestApp, query: &str) -> (StatusCode, Value) {
    send(app.get(&format!("/data_entries?{query}"))).await
}

#[tokio::test]
async fn search_filters_by_the_atomscale_sdk_parameters() {
    let app = spawn_app().await;
    let gan_xps = app
        .create_entry_id(json!({"raw_name": "GaN_run1.vms", "char_source_type": "xps", "pipeline_status": "success"}))
        .await;
    let gan_rheed = app
        .create_entry_id(json!({"raw_name": "gan_run2.mp4", "char_source_type": "rheed_video"}))
        .await;
    let other = app
        .create_entry_id(
            json!({"raw_name": "AlN.vms", "char_source_type": "xps", "pipeline_status": "error"}),
        )
        .await;
    let metrology = app
        .create_entry_id(json!({"raw_name": "tool.csv", "char_source_type": "metrology"}))
        .await;

    let (status, all) = search(&app, "include_organization_data=True&status=all").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all).len(), 4);

    let (_, found) = search(
        &app,
        "keywords=GaN&include_organization_data=True&status=all",
    )
    .await;
    let mut found = ids(&found);
    found.sort();
    let mut expected = vec![gan_xps.clone(), gan_rheed.clone()];
    expected.sort();
    assert_eq!(found, expected, "keywords match case-insensitively");

    let (_, found) = search(&app, "keywords=GaN&data_type=xps&status=success").await;
    assert_eq!(ids(&found), vec![gan_xps.clone()]);
    let (_, found) = search(&app, "data_type=xps&status=error").await;
    assert_eq!(ids(&found), vec![other.clone()]);
    let (_, found) = search(&app, "data_type=tool_state&status=all").await;
    assert_eq!(
        ids(&found),
        vec![metrology],
        "the SDK's legacy name for metrology"
    );
    let (_, found) = search(&app, &format!("data_ids={gan_rheed}&data_ids={other}")).await;
    assert_eq!(ids(&found).len(), 2);

    let (status, problem) = search(&app, "status=finished").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "invalid_enum_value");
    let (status, _) = search(&app, "data_type=plasma").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn keywords_with_like_wildcards_match_literally() {
    let app = spawn_app().await;
    app.create_entry_id(json!({"raw_name": "100%_done.mp4"}))
        .await;
    app.create_entry_id(json!({"raw_name": "100x_done.mp4"}))
        .await;
    let (_, found) = search(&app, "keywords=100%25_").await;
    assert_eq!(ids(&found).len(), 1);
}

#[tokio::test]
async fn search_filters_by_time_ranges_in_both_formats() {
    let app = spawn_app().await;
    let first = app.create_entry(json!({})).await;
    let cut = first["upload_datetime"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = app.create_entry_id(json!({})).await;
    let after =
        chrono::DateTime::parse_from_rfc3339(&cut).unwrap() + chrono::Duration::milliseconds(1);
    let python_style = after.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let (status, found) = search(
        &app,
        &format!("upload_datetime_min={}", urlencode(&python_style)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&found), vec![second]);
    let (_, found) = search(&app, &format!("upload_datetime_max={}", urlencode(&cut))).await;
    assert_eq!(
        ids(&found),
        vec![first["data_id"].as_str().unwrap().to_owned()]
    );
    let (_, found) = search(
        &app,
        "last_updated_min=2000-01-01%2000:00:00&last_updated_max=2000-01-02",
    )
    .await;
    assert_eq!(found, json!([]));
    let (status, _) = search(&app, "last_updated_min=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn pages_follow_the_link_header_and_the_total_is_counted() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            app.create_entry_id(json!({"raw_name": format!("f{i}")}))
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut url = format!("{}/data_entries?limit=3", app.address);
    let mut pages = 0;
    loop {
        let response = app
            .client
            .get(&url)
            .header("X-API-KEY", &app.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-total-count"], "7");
        let next = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        seen.extend(ids(&body));
        pages += 1;
        let Some(link) = next else { break };
        assert!(link.ends_with("rel=\"next\""), "{link}");
        url = link[1..link.find('>').unwrap()].to_owned();
        assert!(url.contains("limit=3"), "the next link keeps the filters");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every entry once, in upload order");

    let (_, newest_first) = search(&app, "order_by=-upload_datetime&limit=2").await;
    assert_eq!(
        ids(&newest_first),
        vec![created[6].clone(), created[5].clone()]
    );
    let (status, _) = search(&app, "limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = search(&app, "limit=10001").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = search(&app, "cursor=garbage").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = search(&app, "order_by=raw_size_gb").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metadata_filters_match_strings_and_scalars_by_text() {
    let app = spawn_app().await;
    let a = app
        .create_entry_id(json!({"metadata": {"operator": "ana", "run": 5, "ok": true}}))
        .await;
    let b = app
        .create_entry_id(json!({"metadata": {"operator": "ben", "run": "5"}}))
        .await;
    let sneaky = app
        .create_entry_id(json!({"metadata": {"it's": "x' OR '1'='1", "ключ": "значение"}}))
        .await;
    let (_, found) = search(&app, "metadata.operator=ana").await;
    assert_eq!(ids(&found), vec![a.clone()]);
    let (_, found) = search(&app, "metadata.run=5").await;
    assert_eq!(ids(&found), vec![a.clone(), b.clone()]);
    let (_, found) = search(&app, "metadata.run=5&metadata.operator=ben").await;
    assert_eq!(ids(&found), vec![b]);
    let (_, found) = search(&app, "metadata.ok=true").await;
    assert_eq!(ids(&found), vec![a]);
    let (_, found) = search(
        &app,
        &format!(
            "metadata.{}={}",
            urlencode("it's"),
            urlencode("x' OR '1'='1")
        ),
    )
    .await;
    assert_eq!(ids(&found), vec![sneaky.clone()]);
    let (_, found) = search(
        &app,
        &format!("metadata.{}={}", urlencode("ключ"), urlencode("значение")),
    )
    .await;
    assert_eq!(ids(&found), vec![sneaky]);
    let (_, found) = search(&app, "metadata.operator=nobody").await;
    assert_eq!(found, json!([]));
}

#[tokio::test]
async fn unknown_search_parameters_are_refused() {
    let app = spawn_app().await;
    let (status, problem) = search(&app, "colour=blue").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "unknown_parameter");
}

#[tokio::test]
async fn metadata_filters_are_answered_from_the_gin_index() {
    let app = spawn_app().await;
    // Enough rows, with varied metadata, that a sequential scan is clearly the worse plan.
    app.seed(
        "INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata,
                                   project_id)
         SELECT gen_random_uuid(), $1, 'f' || i, 'xps',
                jsonb_build_object('operator', 'op' || (i % 500), 'run', i, 'batch', i % 7),
                (SELECT project_id FROM projects WHERE created_by = $1 AND personal)
         FROM generate_series(1, 30000) AS i",
    )
    .await;
    sqlx::query("ANALYZE data_entries")
        .execute(&app.pool)
        .await
        .unwrap();
    let query = labcat::domain::SearchQuery::parse(
        [("metadata.operator", "op42")],
        &labcat::domain::search::CursorKey([0; 32]),
    )
    .unwrap();
    let plan = labcat::db::data_entries::explain_search(
        &app.pool,
        app.access(),
        &query,
        &app.indexed_paths,
    )
    .await
    .unwrap();
    assert!(plan.contains("data_entries_metadata_idx"), "{plan}");
    let (status, found) = search(&app, "metadata.operator=op42&limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&found).len(), 60);
}

#[tokio::test]
async fn many_metadata_filters_read_each_document_at_most_twice_and_all_must_hold() {
    let app = spawn_app().await;
    let both = app
        .create_entry_id(json!({"metadata": {"a": 1, "b": "x", "c": true}}))
        .await;
    let two_of_three = app
        .create_entry_id(json!({"metadata": {"a": "1", "b": "x", "c": false}}))
        .await;
    let (status, found) = search(&app, "metadata.a=1&metadata.b=x&metadata.c=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&found), vec![both.clone()]);
    let (_, found) = search(&app, "metadata.a=1&metadata.b=x").await;
    assert_eq!(ids(&found), vec![both.clone(), two_of_three]);
    let (status, files) = send(app.get("/v2/files?metadata.a=1&metadata.c=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(files["items"].as_array().unwrap().len(), 1);
    assert_eq!(files["items"][0]["id"], both.as_str());

    // Each `metadata @>` in a plan is one more read of the stored document per row: the plan
    // for 32 filters must name the document no more often than the plan for two.
    let plan = |count: usize| {
        let app = &app;
        async move {
            let filters: Vec<String> = (0..count).map(|i| i.to_string()).collect();
            let query = labcat::domain::SearchQuery::parse(
                filters.iter().map(|value| ("metadata.k", value.as_str())),
                &labcat::domain::search::CursorKey([0; 32]),
            )
            .unwrap();
            labcat::db::data_entries::explain_search(
                &app.pool,
                app.access(),
                &query,
                &app.indexed_paths,
            )
            .await
            .unwrap()
        }
    };
    let (two, many) = (plan(2).await, plan(32).await);
    assert_eq!(
        many.matches("metadata").count(),
        two.matches("metadata").count(),
        "{two}\n{many}"
    );
}

#[tokio::test]
async fn a_query_with_more_filters_keywords_or_ids_than_allowed_is_a_400_naming_the_limit() {
    let app = spawn_app().await;
    app.create_entry_id(
        json!({"raw_name": "a.vms", "char_source_type": "xps", "metadata": {"k": 1}}),
    )
    .await;
    let filters = (0..33)
        .map(|i| format!("metadata.k={i}"))
        .collect::<Vec<_>>()
        .join("&");
    let keywords = vec!["w"; 33].join("+");
    let ids = vec![uuid::Uuid::nil().to_string(); 1001].join(",");
    for (query, parameter) in [
        (filters.as_str(), "metadata"),
        (&format!("keywords={keywords}"), "keywords"),
        (&format!("data_ids={ids}"), "data_ids"),
    ] {
        let (status, problem) = search(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{parameter}");
        assert_eq!(problem["code"], "too_many_values");
        assert_eq!(problem["errors"][0]["field"], parameter);
    }
    // At the limit it still answers.
    let filters = vec!["metadata.k=1"; 32].join("&");
    let (status, found) = search(&app, &filters).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_fields_list_repeating_one_name_is_answered_once_per_name() {
    let app = spawn_app().await;
    app.create_entry_id(json!({"raw_name": "a.vms", "char_source_type": "xps"}))
        .await;
    let fields = vec!["raw_name"; 3000].join(",");
    let (status, found) = search(&app, &format!("fields={fields}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found, json!([{"raw_name": "a.vms"}]));
}

#[tokio::test]
async fn dates_outside_the_storable_range_are_a_bad_parameter_not_a_500() {
    let app = spawn_app().await;
    for parameter in [
        "upload_datetime_min",
        "upload_datetime_max",
        "last_updated_min",
        "last_updated_max",
    ] {
        let (status, problem) = search(&app, &format!("{parameter}=-5000-01-01")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{parameter}");
        assert_eq!(problem["errors"][0]["field"], parameter);
    }
    // A forged cursor carrying such a date.
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({"k": "upload_datetime", "d": false, "v": "-5000-01-01T00:00:00Z", "i": uuid::Uuid::nil()})
            .to_string(),
    );
    let (status, problem) = search(&app, &format!("cursor={forged}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "cursor");
}
