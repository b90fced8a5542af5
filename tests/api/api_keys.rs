//! Key self-service over HTTP: create, list, revoke, and who may do which.

use std::time::{Duration, Instant};

use labcat::domain::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};

async fn create_key(app: &TestApp, as_key: &str, body: Value) -> (StatusCode, Value) {
    send(
        app.request_as(as_key, Method::POST, "/api_keys")
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn a_created_key_is_shown_once_listed_without_secrets_and_works() {
    let app = spawn_app().await;
    let (status, created) = create_key(
        &app,
        &app.api_key,
        json!({"name": "ci pipeline", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lc_") && secret.len() == 43);
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "ci pipeline");
    assert_eq!(created["scopes"], json!(["read"]));
    assert_eq!(created["user_id"], app.user_id);
    assert_eq!(created["expires_at"], "2999-01-01T00:00:00Z");
    assert!(created["id"].as_str().is_some() && created["created_at"].as_str().is_some());

    let (status, list) = send(app.get("/api_keys")).await;
    assert_eq!(status, StatusCode::OK);
    let keys = list.as_array().unwrap();
    assert_eq!(keys.len(), 2, "the harness's key and the new one");
    let listed = keys.iter().find(|k| k["id"] == created["id"]).unwrap();
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["prefix"], created["prefix"]);
    assert!(listed.get("key").is_none() && listed.get("key_hash").is_none());
    assert!(!list.to_string().contains(&secret));
    assert!(!list.to_string().contains(&app.api_key));

    // The new key reads, and cannot write: it has only `read`.
    let (status, _) = send(app.request_as(&secret, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        app.request_as(&secret, Method::POST, "/data_entries")
            .json(&json!({"raw_name": "x", "char_source_type": "xps"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_key_cannot_hand_on_scopes_it_does_not_have() {
    let app = spawn_app().await;
    let (status, problem) = create_key(
        &app,
        &app.api_key,
        json!({"name": "x", "scopes": ["read", "admin"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "forbidden");
    // Making and revoking keys is a change: a read-only key may list but not create.
    let reader = app.key_for(&app.user_id, &[Scope::Read]).await;
    let (status, _) = create_key(&app, &reader, json!({"name": "x", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(app.request_as(&reader, Method::GET, "/api_keys")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn only_an_admin_creates_users_and_manages_their_keys() {
    let app = spawn_app().await;
    let (status, _) = create_key(
        &app,
        &app.api_key,
        json!({"name": "x", "scopes": ["read"], "user_id": "bob"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(app.get("/api_keys?user_id=bob")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = app
        .key_for("root", &[Scope::Read, Scope::Write, Scope::Admin])
        .await;
    let (status, created) = create_key(
        &app,
        &admin,
        json!({"name": "partner", "scopes": ["read", "write"], "user_id": "newcomer"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user_id"], "newcomer");
    let newcomer = created["key"].as_str().unwrap();
    let (status, entries) = send(app.request_as(newcomer, Method::GET, "/data_entries")).await;
    assert_eq!((status, entries), (StatusCode::OK, json!([])));

    let (status, list) =
        send(app.request_as(&admin, Method::GET, "/api_keys?user_id=newcomer")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["user_id"], "newcomer");
    let (status, _) = send(app.request_as(&admin, Method::GET, "/api_keys?user_id=bad%20id")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_its_next_request() {
    let app = spawn_app().await;
    let (_, created) = create_key(
        &app,
        &app.api_key,
        json!({"name": "short-lived", "scopes": ["read"]}),
    )
    .await;
    let secret = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let (status, _) = send(app.request_as(secret, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);

    let response = app
        .request(Method::DELETE, &format!("/api_keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, problem) = send(app.request_as(secret, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["code"], "unauthorized");

    let (_, list) = send(app.get("/api_keys")).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(listed["status"], "revoked");
    assert!(listed["revoked_at"].as_str().is_some());
    // Revoking again is harmless.
    let (status, _) = send(app.request(Method::DELETE, &format!("/api_keys/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn someone_elses_key_is_a_404_unless_the_caller_is_an_admin() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let (_, bobs_keys) = send(app.request_as(&bob, Method::GET, "/api_keys")).await;
    let bobs_id = bobs_keys[0]["id"].as_str().unwrap().to_owned();

    let (status, theirs) = send(app.request(Method::DELETE, &format!("/api_keys/{bobs_id}"))).await;
    let missing = uuid::Uuid::new_v4();
    let (status_missing, _) =
        send(app.request(Method::DELETE, &format!("/api_keys/{missing}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(status_missing, StatusCode::NOT_FOUND);
    assert_eq!(theirs["code"], "not_found");
    let (status, _) = send(app.request_as(&bob, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK, "bob's key still works");

    let admin = app
        .key_for("root", &[Scope::Read, Scope::Write, Scope::Admin])
        .await;
    let (status, _) =
        send(app.request_as(&admin, Method::DELETE, &format!("/api_keys/{bobs_id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(app.request_as(&bob, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn last_used_at_appears_in_the_list_after_a_key_is_used() {
    let app = spawn_app().await;
    let (_, created) = create_key(
        &app,
        &app.api_key,
        json!({"name": "used", "scopes": ["read"]}),
    )
    .await;
    let secret = created["key"].as_str().unwrap();
    let (_, list) = send(app.get("/api_keys")).await;
    let unused = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == created["id"]);
    assert_eq!(unused.unwrap()["last_used_at"], Value::Null);

    send(app.request_as(secret, Method::GET, "/data_entries")).await;
    // Written off the request path, so give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = send(app.get("/api_keys")).await;
        let key = list
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == created["id"])
            .cloned()
            .unwrap();
        if key["last_used_at"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never set: {key}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_key_requests_get_clear_4xx_problems() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "x", "scopes": ["root"]}),
            "invalid_enum_value",
        ),
        (json!({"name": "x", "scopes": []}), "invalid_value"),
        (json!({"name": "x", "scopes": "read"}), "invalid_type"),
        (json!({"scopes": ["read"]}), "missing_field"),
        (
            json!({"name": "x", "scopes": ["read"], "key": "lc_mine"}),
            "unknown_field",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_value",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "user_id": "not valid"}),
            "invalid_value",
        ),
    ];
    for (body, code) in cases {
        let (status, problem) = create_key(&app, &app.api_key, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }
    let (status, problem) = send(app.request(Method::DELETE, "/api_keys/not-a-uuid")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "invalid_id");
    let (status, problem) = send(app.get("/api_keys?limit=5")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "unknown_parameter");
    let (status, _) = send(app.anonymous(Method::GET, "/api_keys")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_minted_key_cannot_outlive_the_key_that_made_it() {
    let app = spawn_app().await;
    let parent_expiry = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (parent, parent_record) = labcat::auth::issue_key(
        &app.pool,
        &app.user_id,
        "short-lived",
        &[Scope::Read, Scope::Write],
        Some(parent_expiry),
    )
    .await
    .unwrap();
    let parent = parent.expose().to_owned();
    let parent_expiry = labcat::domain::timestamp::format(&parent_record.expires_at.unwrap());

    let (status, problem) = create_key(
        &app,
        &parent,
        json!({"name": "later", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["code"], "expires_after_parent");
    assert_eq!(problem["errors"][0]["field"], "expires_at");
    assert!(
        problem["detail"].as_str().unwrap().contains(&parent_expiry),
        "{problem}"
    );

    let (status, child) = create_key(
        &app,
        &parent,
        json!({"name": "forever?", "scopes": ["read"], "expires_at": null}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(
        child["expires_at"],
        parent_expiry.as_str(),
        "the parent's expiry"
    );
    let child = child["key"].as_str().unwrap();
    let (status, _) = send(app.request_as(child, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);

    // Once the parent has expired, so has the child.
    let left = parent_record.expires_at.unwrap() - chrono::Utc::now();
    tokio::time::sleep(left.to_std().unwrap_or_default() + Duration::from_millis(100)).await;
    let (status, _) = send(app.request_as(child, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A key that never expires may mint keys that never expire.
    let (status, created) =
        create_key(&app, &app.api_key, json!({"name": "x", "scopes": ["read"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["expires_at"], Value::Null);
}

#[tokio::test]
async fn a_user_holding_the_most_active_keys_gets_a_409_until_one_is_revoked_or_expires() {
    let app = spawn_app_with(|settings| settings.auth.max_active_keys_per_user = 3).await;
    let mut ids = Vec::new();
    for name in ["second", "third"] {
        let (status, created) = create_key(
            &app,
            &app.api_key,
            json!({"name": name, "scopes": ["read"]}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (status, problem) = create_key(
        &app,
        &app.api_key,
        json!({"name": "fourth", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "too_many_api_keys");
    assert!(
        problem["detail"].as_str().unwrap().contains('3'),
        "{problem}"
    );

    // An admin making keys for the user meets the same bound.
    let admin = app
        .key_for("root", &[Scope::Read, Scope::Write, Scope::Admin])
        .await;
    let (status, _) = create_key(
        &app,
        &admin,
        json!({"name": "fourth", "scopes": ["read"], "user_id": app.user_id}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = send(app.request(Method::DELETE, &format!("/api_keys/{}", ids[0]))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = create_key(
        &app,
        &app.api_key,
        json!({"name": "fourth", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "a revoked key does not count");

    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1")
        .bind(uuid::Uuid::parse_str(&ids[1]).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = create_key(
        &app,
        &app.api_key,
        json!({"name": "fifth", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "nor does an expired one");
}
