//! `/openapi.json` and `/docs`: the description covers exactly what actix serves, and the
//! docs page comes from the binary. (CI also validates the document with
//! openapi-spec-validator and fuzzes the server against it: tests/api-fuzz.)

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode, redirect};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app};

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn documented_operations(spec: &Value) -> BTreeSet<(String, String)> {
    spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

async fn served_spec(app: &crate::helpers::TestApp) -> Value {
    let (status, spec) = send(app.anonymous(Method::GET, "/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    spec
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{file}", "index.html")
        .replace("{username}", "alice")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "00000000-0000-0000-0000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_actix_serves_is_in_the_description_and_nothing_else() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let documented = documented_operations(&spec);
    let served: BTreeSet<(String, String)> = labcat::routes::served_routes()
        .into_iter()
        .map(|(method, path)| (method.to_owned(), path))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert!(served.contains(&("patch".into(), "/data_entries/{data_id}".into())));
    assert!(served.contains(&("get".into(), "/v2/files/{file_id}".into())));
}

#[tokio::test]
async fn the_route_table_is_what_actix_actually_routes() {
    let app = spawn_app().await;
    for (method, pattern) in labcat::routes::served_routes() {
        let path = concrete(&pattern);
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let response = app
            .anonymous(method.clone(), &path)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        // No key: a 401 (or the public route's own answer), never "no route" or a 405.
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !body.contains("no route for this path"),
            "{method} {path} is not routed"
        );
    }
}

/// HEAD is implicit in the description (as usual) but served on every GET route: the
/// GET's status and headers, no body.
#[tokio::test]
async fn every_get_route_answers_head_with_the_status_and_headers_of_get_and_no_body() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"k": 1}})).await;
    let (_, sample) = send(
        app.request(Method::POST, "/physical_samples")
            .json(&json!({"name": "wafer"})),
    )
    .await;
    let sample_id = sample["id"].as_str().unwrap().to_owned();
    // Headers that differ between any two requests.
    let volatile = [
        "date",
        "x-request-id",
        "ratelimit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ];
    crate::helpers::install_tls_provider();
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let mut checked = 0;
    for (method, pattern) in labcat::routes::served_routes() {
        if method != "get" {
            continue;
        }
        let path = pattern
            .replace("{data_id}", &id)
            .replace("{file_id}", &id)
            .replace("{physical_sample_id}", &sample_id)
            .replace("{username}", &app.user_id)
            .replace("{file}", "index.html");
        let url = format!("{}{path}", app.address);
        let get = client
            .get(&url)
            .header("X-API-KEY", &app.api_key)
            .send()
            .await
            .unwrap();
        let head = client
            .head(&url)
            .header("X-API-KEY", &app.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_ne!(head.status(), StatusCode::METHOD_NOT_ALLOWED, "HEAD {path}");
        let stable = |response: &reqwest::Response| {
            response
                .headers()
                .iter()
                .filter(|(name, _)| !volatile.contains(&name.as_str()))
                // The metrics and rate-limit documents change with every request, and the
                // feed as the setup's writes are placed in it (every sequence interval).
                .filter(|(name, _)| {
                    *name != "content-length"
                        || !matches!(path.as_str(), "/metrics" | "/v2/rate_limit" | "/events")
                })
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(stable(&head), stable(&get), "HEAD {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} GET routes");
}

#[tokio::test]
async fn the_description_is_openapi_3_1_with_the_three_ways_to_send_a_key() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["title"], "labcat");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(
        schemes["ApiKey"],
        json!({"type": "apiKey", "in": "header", "name": "X-API-KEY",
               "description": schemes["ApiKey"]["description"]})
    );
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["SbgAuthToken"]["name"], "X-SBG-Auth-Token");
    assert_eq!(
        spec["security"],
        json!([{"ApiKey": []}, {"Bearer": []}, {"SbgAuthToken": []}])
    );
    // Every operation has a unique id (clients name their methods after them).
    let ids: Vec<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "duplicate operationIds in {ids:?}");
}

#[tokio::test]
async fn only_health_metrics_docs_and_the_ui_are_documented_as_needing_no_key() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let public: BTreeSet<String> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, item)| {
            item.as_object()
                .unwrap()
                .values()
                .any(|operation| operation["security"] == json!([{}]))
        })
        .map(|(path, _)| path.clone())
        .collect();
    let expected: BTreeSet<String> = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/{file}",
        // The web UI: without a session its pages are the sign-in form.
        "/",
        "/ui",
        "/ui/keys",
        "/ui/entries/{data_id}",
        "/ui/projects/{project_id}/members",
        "/ui/assets/{file}",
        "/ui/sign_in",
        "/ui/sign_out",
    ]
    .map(String::from)
    .into();
    assert_eq!(public, expected);
    // ...and the server agrees: each answers without a key.
    for path in ["/healthz", "/metrics", "/openapi.json", "/docs/index.html"] {
        let (status, _) = send(app.anonymous(Method::GET, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn enums_in_the_description_are_the_domain_enums() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["CharSourceType"]["enum"],
        json!(labcat::domain::CharSourceType::NAMES)
    );
    assert_eq!(
        schemas["PipelineStatus"]["enum"],
        json!(labcat::domain::PipelineStatus::NAMES)
    );
    assert_eq!(
        schemas["Scope"]["enum"],
        json!(labcat::domain::Scope::NAMES)
    );
    // Request bodies refuse unknown members, as the handlers do.
    for name in [
        "NewDataEntry",
        "DataEntryPatch",
        "NewPhysicalSample",
        "NewApiKey",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    assert_eq!(
        schemas["NewDataEntry"]["required"],
        json!(["raw_name", "char_source_type"])
    );
}

#[tokio::test]
async fn native_errors_are_documented_as_problem_json() {
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let responses = spec["components"]["responses"].as_object().unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if path.starts_with("/v2/") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.trim_start_matches("#/components/responses/");
                        &responses[name]
                    }
                    None => response,
                };
                // The UI's pages answer a person: their "not found" is a page too.
                if path.starts_with("/ui") && response["content"]["text/html"].is_object() {
                    continue;
                }
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    crate::helpers::install_tls_provider();
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/docs", "/docs/"] {
        let response = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{path}");
        assert_eq!(response.headers()["location"], "/docs/index.html");
    }
    let page = app
        .anonymous(Method::GET, "/docs/index.html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let initializer = app
        .anonymous(Method::GET, "/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains("\"url\": \"/openapi.json\""),
        "{initializer}"
    );
    // The default would send the document to validator.swagger.io.
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );

    let bundle = app
        .anonymous(Method::GET, "/docs/swagger-ui-bundle.js")
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);

    let (status, problem) = send(app.anonymous(Method::GET, "/docs/nope.js")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["code"], "not_found");
}

#[tokio::test]
async fn an_unsupported_method_is_a_405_that_names_the_allowed_ones() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::PUT, "/data_entries", "GET, HEAD, POST, PATCH"),
        (
            Method::POST,
            "/data_entries/x/metadata",
            "GET, HEAD, PATCH, PUT",
        ),
        (Method::DELETE, "/openapi.json", "GET, HEAD"),
        (Method::POST, "/v2/files/x", "GET, HEAD, PATCH, DELETE"),
        (Method::HEAD, "/v2/bulk/files/get", "POST"),
    ] {
        let response = app.request(method.clone(), path).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
}

/// Found by schemathesis: the idempotency middleware answered before routing did.
#[tokio::test]
async fn an_idempotency_key_on_an_unsupported_method_still_gets_a_405() {
    let app = spawn_app().await;
    for _ in 0..2 {
        let (status, problem) = send(
            app.request(Method::PATCH, "/physical_samples")
                .header("Idempotency-Key", "k1")
                .json(&json!({"name": "0"})),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{problem}");
    }
    // Where the method is served, the key still works.
    let create = || {
        app.request(Method::POST, "/physical_samples")
            .header("Idempotency-Key", "k1")
            .json(&json!({"name": "wafer 7"}))
    };
    let (first, body) = send(create()).await;
    assert_eq!(first, StatusCode::CREATED, "{body}");
    let replayed = create().send().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.headers()["idempotency-replayed"], "true");
}

/// Found by schemathesis: PostgreSQL hands such numbers back as 309-digit decimals, which
/// the default float parser rounded to infinity, so the entry could no longer be read (500).
#[tokio::test]
async fn metadata_numbers_at_the_limits_of_a_double_read_back_unchanged() {
    let app = spawn_app().await;
    let metadata = json!({
        "max": 1.7976931348623157e308,
        "min": -1.7976931348623157e308,
        "near_max": -1.7976931348623155e308,
        "tiny": 5e-324,
        "small": -1.937277794467717e-245,
    });
    let entry = app.create_entry(json!({"metadata": metadata})).await;
    assert_eq!(entry["metadata"], metadata);
    let id = crate::helpers::id_of(&entry);
    let (status, read) = send(app.get(&format!("/data_entries/{id}/metadata"))).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, metadata);
    let (status, _) = send(
        app.request(Method::PUT, &format!("/data_entries/{id}/metadata"))
            .json(&json!({"c": -1.7976931348623157e308})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
