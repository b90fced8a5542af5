//! What a platform team watches and tunes: metrics, rate limits, CORS, the time bound.

use std::time::{Duration, Instant};

use labcat::config::Settings;
use labcat::domain::Scope;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, metric_value, send, spawn_app, spawn_app_with};

async fn scrape(app: &TestApp) -> String {
    let response = app.anonymous(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    response.text().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_status_without_a_key() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for _ in 0..2 {
        let (status, _) = send(app.get(&format!("/data_entries/{id}"))).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = send(app.anonymous(Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(app.get("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let text = scrape(&app).await;
    let line = r#"labcat_http_requests_total{method="GET",route="/data_entries/{data_id}",status="200"} 2"#;
    assert!(text.contains(line), "{text}");
    assert!(text.contains(
        r#"labcat_http_requests_total{method="POST",route="/data_entries",status="201"} 1"#
    ));
    assert!(text.contains(
        r#"labcat_http_requests_total{method="GET",route="/data_entries",status="401"} 1"#
    ));
    assert!(text.contains(
        r#"labcat_http_requests_total{method="GET",route="(unmatched)",status="404"} 1"#
    ));
    assert!(!text.contains(&id), "raw paths never become labels");
    assert!(text.contains(
        r#"labcat_http_request_duration_seconds_count{method="GET",route="/data_entries/{data_id}",status="200"} 2"#
    ));
    assert!(text.contains(r#"labcat_http_request_duration_seconds_bucket{method="GET",route="/data_entries/{data_id}",status="200",le="0.25"}"#));
    assert!(text.contains("labcat_auth_failures_total 1"), "{text}");
    assert!(text.contains(r#"labcat_db_pool_connections{state="in_use"}"#));
    assert!(text.contains(r#"labcat_db_pool_connections{state="idle"}"#));
    let pool_size = Settings::defaults().database.pool_size();
    assert!(pool_size > 0);
    assert!(text.contains(&format!("labcat_db_pool_max_connections {pool_size}")));
    assert!(text.contains("# TYPE labcat_rate_limited_requests_total counter"));
    // The two reads above, one after the other, were each a statement of their own.
    assert_eq!(
        metric_value(&text, "labcat_entry_read_batch_size_count"),
        2.0
    );
    assert_eq!(metric_value(&text, "labcat_entry_read_batch_size_sum"), 2.0);
}

#[tokio::test]
async fn readyz_names_the_applied_migrations_and_healthz_needs_nothing() {
    let app = spawn_app().await;
    let (status, body) = send(app.anonymous(Method::GET, "/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(body, json!({"status": "ready", "migrations": applied}));
    let (status, body) = send(app.anonymous(Method::GET, "/healthz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn a_user_past_its_burst_gets_429_with_retry_after_and_ratelimit_headers_then_recovers() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.read_per_second = 1;
        settings.rate_limit.read_burst = 2;
    })
    .await;
    for left in [1, 0] {
        let response = app.get("/data_entries").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-policy"), r#""read";q=2;w=2"#);
        assert!(
            header(&response, "ratelimit").starts_with(&format!(r#""read";r={left};t="#)),
            "{:?}",
            response.headers()
        );
    }
    let refused = app.get("/data_entries").send().await.unwrap();
    let refused_at = Instant::now();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "ratelimit-policy"), r#""read";q=2;w=2"#);
    assert!(header(&refused, "ratelimit").starts_with(r#""read";r=0;t="#));
    assert_eq!(header(&refused, "content-type"), "application/problem+json");
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["status"], 429);

    // Writes have their own bucket, and other users their own buckets.
    let (status, _) = send(
        app.request(Method::POST, "/data_entries")
            .json(&json!({"raw_name": "x", "char_source_type": "xps"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = app.key_for("bob", &[Scope::Read]).await;
    let (status, _) = send(app.request_as(&other, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);

    // One token is back after a second.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(refused_at.elapsed())).await;
    let (status, _) = send(app.get("/data_entries")).await;
    assert_eq!(status, StatusCode::OK);

    let text = scrape(&app).await;
    assert!(
        text.contains(r#"labcat_rate_limited_requests_total{policy="read"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_carry_no_ratelimit_headers() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::GET, "/data_entries")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!response.headers().contains_key("ratelimit"));
    let response = app.get("/data_entries").send().await.unwrap();
    assert!(response.headers().contains_key("ratelimit"));
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_may_send_the_api_headers() {
    let origin = "https://catalogue.example.org";
    let app = spawn_app_with(|settings| settings.cors.allowed_origins = vec![origin.into()]).await;
    let id = app.create_entry_id(json!({})).await;
    let preflight = app
        .anonymous(Method::OPTIONS, &format!("/data_entries/{id}"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "PATCH")
        .header(
            "Access-Control-Request-Headers",
            "x-api-key, content-type, if-match, idempotency-key, x-request-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin"), origin);
    assert!(header(&preflight, "access-control-allow-methods").contains("PATCH"));
    let allowed = header(&preflight, "access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "x-api-key",
        "authorization",
        "if-match",
        "if-none-match",
        "idempotency-key",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }

    let response = app
        .get(&format!("/data_entries/{id}"))
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), origin);
    let exposed = header(&response, "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "etag",
        "link",
        "x-total-count",
        "x-request-id",
        "retry-after",
        "ratelimit",
    ] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn_app_with(|settings| {
        settings.cors.allowed_origins = vec!["https://catalogue.example.org".into()];
    })
    .await;
    let response = app
        .get("/data_entries")
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let preflight = app
        .anonymous(Method::OPTIONS, "/data_entries")
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!preflight.status().is_success());
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );

    // With no allow-list (the default) nobody gets CORS headers.
    let app = spawn_app().await;
    let response = app
        .get("/data_entries")
        .header("Origin", "https://catalogue.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn a_request_past_the_time_bound_gets_a_503_with_retry_after() {
    let app = spawn_app_with(|settings| settings.server.request_timeout_ms = 300).await;
    let id = app.create_entry_id(json!({})).await;
    // Hold the row, as a stuck database would, so the PATCH cannot finish.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = Instant::now();
    let response = app
        .patch_json(
            &format!("/data_entries/{id}"),
            &json!({"pipeline_status": "running"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(response.headers().contains_key("retry-after"));
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "service_unavailable");
    assert_eq!(problem["request_id"], request_id.as_str());
    lock.rollback().await.unwrap();
    let (status, _) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_write_cancelled_by_the_statement_timeout_is_a_503_with_retry_after_and_changes_nothing()
{
    let app = spawn_app_with(|settings| settings.database.statement_timeout_ms = 300).await;
    let id = app.create_entry_id(json!({})).await;
    // Another session holds the row longer than the statement timeout.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM data_entries WHERE data_id = $1::uuid FOR UPDATE")
        .bind(&id)
        .execute(&mut *lock)
        .await
        .unwrap();

    let response = app
        .patch_json(
            &format!("/data_entries/{id}"),
            &json!({"pipeline_status": "running"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "service_unavailable");

    let response = app
        .anonymous(Method::PATCH, &format!("/v2/files/{id}/metadata"))
        .header("X-SBG-Auth-Token", &app.api_key)
        .json(&json!({"foo": "bar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["code"], 90005);

    lock.rollback().await.unwrap();
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["pipeline_status"], "pending");
    assert_eq!(entry["metadata"], json!({}));
    assert_eq!(entry["revision"], 1);
}

/// Sends `head` and then `body_start` of a body that never finishes, and returns the raw
/// answer (the server closes the connection after it).
async fn send_unfinished_body(app: &TestApp, head: String, body_start: &'static str) -> String {
    use std::io::{Read, Write};
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        // Only so that a broken server fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body_start.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_body_that_has_not_arrived_when_time_runs_out_is_a_408_not_a_database_503() {
    let app = spawn_app_with(|settings| settings.server.request_timeout_ms = 300).await;
    let body = r#"{"raw_name": "slow.mp4", "char_source_type": "sem"}"#;
    let head = format!(
        "POST /data_entries HTTP/1.1\r\nHost: {}\r\nX-API-KEY: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.address.trim_start_matches("http://"),
        app.api_key,
        body.len()
    );
    let answer = send_unfinished_body(&app, head, &body[..5]).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    let (_, entries) = send(app.get("/data_entries")).await;
    assert_eq!(entries, json!([]), "nothing was created");
}
