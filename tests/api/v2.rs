//! The Seven Bridges-compatible surface (`/v2`): the shapes sevenbridges-python insists on,
//! the error mapping, and that it is the same catalogue underneath (tests/sdk runs the
//! real client).

use labcat::domain::Scope;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};

/// A `/v2` request as the client sends it: `X-SBG-Auth-Token`, JSON content type always.
fn sbg(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    sbg_as(app, &app.api_key, method, path)
}

fn sbg_as(app: &TestApp, key: &str, method: Method, path: &str) -> RequestBuilder {
    app.anonymous(method, &format!("/v2{path}"))
        .header("X-SBG-Auth-Token", key)
        .header("Content-Type", "application/json")
}

async fn native_entry(app: &TestApp, id: &str) -> Value {
    send(app.get(&format!("/data_entries/{id}"))).await.1
}

fn assert_sbg_error(body: &Value, status: u16, code: u64) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["more_info"].is_string(), "{body}");
}

#[tokio::test]
async fn a_file_is_the_entry_in_the_shape_the_client_requires() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"raw_name": "a.fastq", "raw_size_gb": 1.5}))
        .await;
    let (status, file) = send(sbg(&app, Method::GET, &format!("/files/{id}")).body("null")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["href"], format!("{}/v2/files/{id}", app.address));
    assert_eq!(file["id"], id);
    assert_eq!(file["name"], "a.fastq");
    assert_eq!(file["size"], json!(1_500_000_000_i64));
    assert!(file["size"].is_i64(), "an integer, not a float");
    assert_eq!(file["project"], format!("{}/personal", app.user_id));
    assert_eq!(file["type"], "file");
    assert_eq!(file["metadata"], json!({}), "never null");
    assert_eq!(file["tags"], json!([]));
    assert_eq!(file["storage"]["type"], "PLATFORM");
    assert_eq!(file["origin"], json!({}));
    let entry = native_entry(&app, &id).await;
    assert_eq!(file["created_on"], entry["upload_datetime"]);
    assert_eq!(file["modified_on"], entry["last_updated"]);
    assert!(file["created_on"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn fields_selects_members_but_keeps_href_and_id() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"k": "v"}})).await;
    let (_, file) = send(sbg(&app, Method::GET, &format!("/files/{id}?fields=name"))).await;
    let mut keys: Vec<_> = file.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["href", "id", "name"]);
    let (_, file) = send(sbg(&app, Method::GET, &format!("/files/{id}?fields=_all"))).await;
    assert_eq!(file["metadata"], json!({"k": "v"}));
    let (status, body) = send(sbg(&app, Method::GET, &format!("/files/{id}?fields=nope"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_sbg_error(&body, 400, 90000);
}

#[tokio::test]
async fn the_seed_curl_example_returns_the_full_metadata() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"library_id": "12345", "platform": "my_platform"}}))
        .await;
    // As in the Cavatica example: X-SBG-Auth-Token, lower-case content-type, {"foo": "bar"}.
    let (status, body) = send(
        app.anonymous(Method::PATCH, &format!("/v2/files/{id}/metadata"))
            .header("X-SBG-Auth-Token", &app.api_key)
            .header("content-type", "application/json")
            .body(r#"{"foo": "bar"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"library_id": "12345", "platform": "my_platform", "foo": "bar"})
    );
    assert_eq!(native_entry(&app, &id).await["metadata"], body);
}

#[tokio::test]
async fn metadata_patch_merges_deletes_with_null_and_put_replaces() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"metadata": {"a": "1", "b": "2"}}))
        .await;
    let path = format!("/files/{id}/metadata");
    let (_, body) = send(sbg(&app, Method::PATCH, &path).json(&json!({"a": null, "c": "3"}))).await;
    assert_eq!(body, json!({"b": "2", "c": "3"}));
    let (status, body) =
        send(sbg(&app, Method::PUT, &path).json(&json!({"x": "9", "gone": null}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"x": "9"}),
        "a null in a whole document means no such key"
    );
    let (_, body) = send(sbg(&app, Method::GET, &path)).await;
    assert_eq!(body, json!({"x": "9"}));
    let (_, body) = send(
        sbg(&app, Method::PUT, &format!("{path}?fields=x")).json(&json!({
            "x": "1", "y": "2"
        })),
    )
    .await;
    assert_eq!(body, json!({"x": "1"}), "?fields= picks keys");
}

#[tokio::test]
async fn an_empty_patch_is_a_no_op_that_answers_200() {
    let app = spawn_app().await;
    let created = app.create_entry(json!({"metadata": {"a": "1"}})).await;
    let id = created["data_id"].as_str().unwrap();
    let (status, file) = send(sbg(&app, Method::PATCH, &format!("/files/{id}")).body("{}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["id"], id);
    let (status, body) =
        send(sbg(&app, Method::PATCH, &format!("/files/{id}/metadata")).body("{}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"a": "1"}));
    let entry = native_entry(&app, id).await;
    assert_eq!(entry["revision"], 1);
    assert_eq!(entry["last_updated"], created["last_updated"]);
}

#[tokio::test]
async fn patching_a_file_renames_it_and_replaces_metadata_and_tags() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"old": "1"}})).await;
    let (status, file) = send(
        sbg(&app, Method::PATCH, &format!("/files/{id}")).json(&json!({
            "name": "renamed.fastq", "metadata": {"new": "2"}, "tags": ["t"]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(file["name"], "renamed.fastq");
    assert_eq!(file["metadata"], json!({"new": "2"}));
    assert_eq!(file["tags"], json!(["t"]));
    assert_eq!(native_entry(&app, &id).await["raw_name"], "renamed.fastq");

    let (status, body) = send(
        sbg(&app, Method::PATCH, &format!("/files/{id}")).json(&json!({"name": "", "size": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_sbg_error(&body, 400, 5024);
}

#[tokio::test]
async fn tags_are_replaced_as_an_array_and_recorded_in_the_history() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let path = format!("/files/{id}/tags");
    let (status, body) = send(sbg(&app, Method::PUT, &path).json(&json!(["b", "a", "b"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(["b", "a"]));
    let (_, file) = send(sbg(&app, Method::GET, &format!("/files/{id}"))).await;
    assert_eq!(file["tags"], json!(["b", "a"]));
    let (_, history) = send(app.get(&format!("/data_entries/{id}/history"))).await;
    assert_eq!(
        history[0]["changes"]["tags"],
        json!({"before": [], "after": ["b", "a"]})
    );
    let (status, body) = send(sbg(&app, Method::PUT, &path).json(&json!("b"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_sbg_error(&body, 400, 90000);
}

#[tokio::test]
async fn errors_use_the_seven_bridges_shape_and_statuses() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;

    let missing = uuid::Uuid::new_v4();
    let (status, body) = send(sbg(&app, Method::GET, &format!("/files/{missing}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_sbg_error(&body, 404, 5002);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&missing.to_string())
    );
    let (status, body) = send(sbg(&app, Method::GET, "/files/5f0c0e0e0e0e0e0e0e0e0e01")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a non-UUID id names no file");
    assert_sbg_error(&body, 404, 5002);

    let (status, body) = send(sbg_as(
        &app,
        "lc_nope",
        Method::GET,
        &format!("/files/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_sbg_error(&body, 401, 90001);
    let (status, body) = send(app.anonymous(Method::GET, "/v2/user")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_sbg_error(&body, 401, 90001);

    let reader = app.key_for(&app.user_id, &[Scope::Read]).await;
    let (status, body) = send(
        sbg_as(
            &app,
            &reader,
            Method::PATCH,
            &format!("/files/{id}/metadata"),
        )
        .json(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_sbg_error(&body, 403, 90002);

    let (status, body) =
        send(sbg(&app, Method::PATCH, &format!("/files/{id}/metadata")).body(r#"{"foo": "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_sbg_error(&body, 400, 90009);
    let (status, body) = send(
        sbg(&app, Method::PATCH, &format!("/files/{id}/metadata")).json(&json!({"a\u{0}": 1})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "422 on the native API, 400 here"
    );
    assert_sbg_error(&body, 400, 5006);

    let response = sbg(&app, Method::POST, &format!("/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD, PATCH, DELETE");
    assert_sbg_error(&response.json().await.unwrap(), 405, 90006);

    let (status, body) = send(sbg(&app, Method::GET, "/tasks")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_sbg_error(&body, 404, 90003);
}

#[tokio::test]
async fn an_unavailable_database_is_a_503_whose_code_is_never_0() {
    let app = spawn_app().await;
    // The app shares this pool: closed, every request finds the database gone.
    app.pool.close().await;
    let (status, body) = send(sbg(&app, Method::GET, "/files?project=alice")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_sbg_error(&body, 503, 90005);
}

#[tokio::test]
async fn every_response_carries_rate_limit_and_request_id_headers() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let now = chrono::Utc::now().timestamp();
    let requests = [
        sbg(&app, Method::GET, &format!("/files/{id}")),
        sbg(&app, Method::GET, "/files/nope"),
        sbg_as(&app, "lc_nope", Method::GET, "/user"),
        sbg(&app, Method::PUT, &format!("/files/{id}/tags")).json(&json!(["t"])),
        sbg(&app, Method::GET, "/rate_limit"),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let headers = response.headers();
        let number = |name: &str| -> i64 {
            headers
                .get(name)
                .unwrap_or_else(|| panic!("{name} on {}", response.url()))
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert!(number("x-ratelimit-limit") > 0);
        assert!((0..=number("x-ratelimit-limit")).contains(&number("x-ratelimit-remaining")));
        assert!(number("x-ratelimit-reset") >= now, "epoch seconds");
        assert!(headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn a_rate_limited_request_is_a_429_with_code_1000_and_an_integer_reset() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.read_per_second = 1;
        settings.rate_limit.read_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let (status, _) = send(sbg(&app, Method::GET, "/user")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let now = chrono::Utc::now().timestamp();
    let response = sbg(&app, Method::GET, "/user").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let reset: i64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset > now,
        "the client's rate_limit_sleeper sleeps until this epoch second"
    );
    assert_sbg_error(&response.json().await.unwrap(), 429, 1000);
}

#[tokio::test]
async fn rate_limit_and_user_describe_the_caller() {
    let app = spawn_app().await;
    let response = sbg(&app, Method::GET, "/rate_limit").send().await.unwrap();
    let limit: i64 = response.headers()["x-ratelimit-limit"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rate"]["limit"], limit);
    assert!(
        body["rate"]["remaining"].as_i64().unwrap() < limit,
        "this request counted"
    );
    assert!(body["rate"]["reset"].is_i64());
    let (_, user) = send(sbg(&app, Method::GET, "/user")).await;
    assert_eq!(user["username"], app.user_id);
    assert_eq!(
        user["href"],
        format!("{}/v2/users/{}", app.address, app.user_id)
    );
    let (status, same) = send(sbg(&app, Method::GET, &format!("/users/{}", app.user_id))).await;
    assert_eq!((status, &same), (StatusCode::OK, &user));
    let (status, body) = send(sbg(&app, Method::GET, "/users/bob")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_sbg_error(&body, 404, 2002);
}

#[tokio::test]
async fn listing_pages_by_offset_with_total_and_absolute_links() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.create_entry_id(json!({"raw_name": format!("f{i}"), "metadata": {"s": "S1"}}))
                .await,
        );
    }
    app.create_entry_id(json!({"metadata": {"s": "S2"}})).await;
    let query = "/files?offset=0&limit=2&fields=_all&project=alice&metadata.s=S1";
    let response = sbg(&app, Method::GET, query).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-total-matching-query"], "5");
    let mut page: Value = response.json().await.unwrap();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        let href = page["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("{}/v2/files?", app.address)),
            "{href}"
        );
        assert!(
            href.contains("metadata.s=S1") && href.contains("limit=2"),
            "{href}"
        );
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["metadata"], json!({"s": "S1"}));
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        let links = page["links"].as_array().unwrap();
        assert_eq!(
            links.iter().any(|l| l["rel"] == "prev"),
            pages > 1,
            "{links:?}"
        );
        let Some(next) = links.iter().find(|l| l["rel"] == "next") else {
            break;
        };
        assert_eq!(next["method"], "GET");
        let next = next["href"].as_str().unwrap();
        page = app
            .client
            .get(next)
            .header("X-SBG-Auth-Token", &app.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every file once, oldest first");
}

#[tokio::test]
async fn listing_filters_like_seven_bridges() {
    let app = spawn_app().await;
    let a = app
        .create_entry_id(json!({"raw_name": "a", "metadata": {"s": "S1", "lib": "L1"}}))
        .await;
    let b = app
        .create_entry_id(json!({"raw_name": "b", "metadata": {"s": "S2", "lib": "L1"}}))
        .await;
    let c = app
        .create_entry_id(json!({"raw_name": "c", "metadata": {"s": "S3", "n": 5}}))
        .await;
    send(sbg(&app, Method::PUT, &format!("/files/{c}/tags")).json(&json!(["x"]))).await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    app.request_as(&bob, Method::POST, "/data_entries")
        .json(&json!({"raw_name": "a", "char_source_type": "xps", "metadata": {"s": "S1"}}))
        .send()
        .await
        .unwrap();

    let ids = |query: &'static str| {
        let request = sbg(&app, Method::GET, &format!("/files?project=alice&{query}"));
        async move {
            let (status, body) = send(request).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let mut ids: Vec<String> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids("metadata.s=S1&metadata.s=S2").await,
        sorted(vec![a.clone(), b.clone()]),
        "one key repeated: any value"
    );
    assert_eq!(ids("metadata.s=S2&metadata.lib=L1").await, vec![b.clone()]);
    assert_eq!(
        ids("metadata.n=5").await,
        vec![c.clone()],
        "numbers match too"
    );
    assert_eq!(
        ids("name=a&name=c").await,
        sorted(vec![a.clone(), c.clone()])
    );
    assert_eq!(ids("tag=x&tag=y").await, vec![c.clone()]);
    assert_eq!(ids("origin.task=t1").await, Vec::<String>::new());
    assert_eq!(
        ids("name=").await.len(),
        3,
        "an empty name list filters nothing"
    );

    for (query, status, code) in [
        ("/files?project=bob", 404, 3002),
        ("/files?parent=5f0c", 404, 90003),
        ("/files?project=alice&limit=101", 400, 90000),
        ("/files?project=alice&bogus=1", 400, 90000),
    ] {
        let (got, body) = send(sbg(&app, Method::GET, query)).await;
        assert_eq!(got.as_u16(), status, "{query}: {body}");
        assert_sbg_error(&body, status, code);
    }
}

#[tokio::test]
async fn bulk_get_answers_per_item_in_request_order() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({"raw_name": "a"})).await;
    let b = app.create_entry_id(json!({"raw_name": "b"})).await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let (_, theirs) = send(
        app.request_as(&bob, Method::POST, "/data_entries")
            .json(&json!({"raw_name": "x", "char_source_type": "xps"})),
    )
    .await;
    let theirs = theirs["data_id"].as_str().unwrap();
    let (status, body) = send(
        sbg(&app, Method::POST, "/bulk/files/get")
            .json(&json!({"file_ids": [b, "nope", a, theirs]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["resource"]["name"], "b");
    assert_eq!(items[2]["resource"]["name"], "a");
    for failed in [&items[1], &items[3]] {
        assert!(failed.get("resource").is_none(), "{failed}");
        assert_sbg_error(&failed["error"], 404, 5002);
    }
}

#[tokio::test]
async fn bulk_edit_merges_and_bulk_update_replaces() {
    let app = spawn_app().await;
    let a = app
        .create_entry_id(json!({"raw_name": "a", "metadata": {"keep": "1", "drop": "2"}}))
        .await;
    let b = app
        .create_entry_id(json!({"raw_name": "b", "metadata": {"keep": "1"}}))
        .await;
    send(sbg(&app, Method::PUT, &format!("/files/{b}/tags")).json(&json!(["t"]))).await;

    let (status, body) = send(
        sbg(&app, Method::POST, "/bulk/files/edit").json(&json!({"items": [
            {"id": a, "name": "a2", "tags": null, "metadata": {"drop": null, "new": "3"}},
            {"file_id": b, "name": null, "tags": null, "metadata": null},
            {"id": a, "metadata": {"x": "y\u{0}"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items[0]["resource"]["name"], "a2");
    assert_eq!(
        items[0]["resource"]["metadata"],
        json!({"keep": "1", "new": "3"})
    );
    assert_eq!(
        items[1]["resource"]["tags"],
        json!(["t"]),
        "null leaves it alone"
    );
    assert_eq!(items[1]["resource"]["metadata"], json!({"keep": "1"}));
    assert_sbg_error(&items[2]["error"], 400, 5006);

    let (_, body) = send(
        sbg(&app, Method::POST, "/bulk/files/update").json(&json!({"items": [
            {"id": b, "name": "b2", "tags": null, "metadata": {"only": "this", "gone": null}},
        ]})),
    )
    .await;
    let file = &body["items"][0]["resource"];
    assert_eq!(file["name"], "b2");
    assert_eq!(file["tags"], json!([]), "null erases on update");
    assert_eq!(file["metadata"], json!({"only": "this"}));
    assert_eq!(
        native_entry(&app, &b).await["metadata"],
        json!({"only": "this"})
    );
}

#[tokio::test]
async fn bulk_delete_and_delete_remove_entries() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({})).await;
    let b = app.create_entry_id(json!({})).await;
    let missing = uuid::Uuid::new_v4().to_string();
    let (_, body) = send(
        sbg(&app, Method::POST, "/bulk/files/delete").json(&json!({"file_ids": [a, missing]})),
    )
    .await;
    assert_eq!(body["items"][0]["resource"]["id"], a);
    assert_sbg_error(&body["items"][1]["error"], 404, 5002);
    let response = sbg(&app, Method::DELETE, &format!("/files/{b}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for id in [a, b] {
        let (status, _) = send(app.get(&format!("/data_entries/{id}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_file_query_with_more_metadata_values_than_allowed_is_a_400() {
    let app = spawn_app().await;
    let filters = (0..33)
        .map(|i| format!("metadata.k={i}"))
        .collect::<Vec<_>>()
        .join("&");
    let (status, body) = send(sbg(&app, Method::GET, &format!("/files?{filters}"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("32"), "{body}");
}

#[tokio::test]
async fn every_bulk_route_refuses_a_file_named_twice_before_doing_anything() {
    let app = spawn_app().await;
    let a = app.create_entry_id(json!({"raw_name": "a"})).await;
    let b = app.create_entry_id(json!({"raw_name": "b"})).await;
    let requests = [
        ("/bulk/files/get", json!({"file_ids": [a, b, a]})),
        ("/bulk/files/delete", json!({"file_ids": [a, b, a]})),
        (
            "/bulk/files/update",
            json!({"items": [{"id": a, "name": "x"}, {"id": b}, {"id": a, "name": "y"}]}),
        ),
        (
            "/bulk/files/edit",
            json!({"items": [{"id": a, "name": "x"}, {"id": b}, {"file_id": a}]}),
        ),
    ];
    for (path, body) in requests {
        let (status, error) = send(sbg(&app, Method::POST, path).json(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {error}");
        assert_sbg_error(&error, 400, 90000);
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&a) && message.contains("positions 0, 2"),
            "{path}: {message}"
        );
        assert!(
            error["more_info"]
                .as_str()
                .unwrap()
                .contains("duplicate_item")
        );
    }
    for id in [&a, &b] {
        let entry = native_entry(&app, id).await;
        assert_eq!(entry["revision"], 1, "nothing changed or deleted: {entry}");
    }
}

#[tokio::test]
async fn a_bulk_get_costs_one_read_token_per_file() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.read_per_second = 1;
        settings.rate_limit.read_burst = 10;
    })
    .await;
    let ids =
        |n: usize| -> Vec<String> { (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect() };
    let response = sbg(&app, Method::POST, "/bulk/files/get")
        .json(&json!({"file_ids": ids(8)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-ratelimit-limit"],
        "10",
        "the read bucket"
    );
    let remaining: u64 = response.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining <= 2, "8 of the 10 tokens are spent: {remaining}");

    let now = chrono::Utc::now().timestamp();
    let response = sbg(&app, Method::POST, "/bulk/files/get")
        .json(&json!({"file_ids": ids(5)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let reset: i64 = response.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > now);
    assert_sbg_error(&response.json().await.unwrap(), 429, 1000);

    // Writes draw from their own bucket.
    let (status, _) =
        send(sbg(&app, Method::POST, "/bulk/files/delete").json(&json!({"file_ids": ids(5)})))
            .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_v2_file_carries_the_entrys_etag_and_revalidates_like_the_native_entry() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let response = sbg(&app, Method::GET, &format!("/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let native = app
        .get(&format!("/data_entries/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(native.headers()["etag"].to_str().unwrap(), etag);
    let response = sbg(&app, Method::GET, &format!("/files/{id}"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}
