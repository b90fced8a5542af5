use reqwest::{Method, StatusCode};

use crate::helpers::{send, spawn_app};

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_key() {
    let app = spawn_app().await;
    let (status, body) = send(app.anonymous(Method::GET, "/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = send(app.anonymous(Method::GET, "/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn an_incoming_request_id_is_echoed_and_used_in_problems() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::GET, "/data_entries")
        .header("X-Request-Id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-me-123");

    // Without one (or with one not fit for a log line) the server makes one and says it.
    for incoming in [None, Some("has spaces in it"), Some(&*"x".repeat(200))] {
        let mut request = app.get("/data_entries");
        if let Some(value) = incoming {
            request = request.header("X-Request-Id", value);
        }
        let response = request.send().await.unwrap();
        let made = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    }
    let response = app.get("/no/such/route").send().await.unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], made.as_str());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problem_bodies() {
    let app = spawn_app().await;
    let (status, body) = send(app.get("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    let (status, body) = send(app.request(Method::PUT, "/data_entries")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}
