use labcat::domain::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{send, spawn_app, spawn_app_with};

#[tokio::test]
async fn requests_without_a_key_get_a_401_problem() {
    let app = spawn_app().await;
    let response = app
        .anonymous(Method::GET, "/data_entries")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn unknown_malformed_revoked_and_expired_keys_all_get_the_same_401() {
    let app = spawn_app().await;
    let revoked = app.key_for("alice", &[Scope::Read]).await;
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1")
        .bind(&revoked[..11])
        .execute(&app.pool)
        .await
        .unwrap();
    let expired = app.key_for("alice", &[Scope::Read]).await;
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE prefix = $1")
        .bind(&expired[..11])
        .execute(&app.pool)
        .await
        .unwrap();
    let unknown = format!("lc_{}", "A".repeat(40));
    let mut bodies = Vec::new();
    for key in [
        unknown.as_str(),
        "not-a-key",
        "lc_",
        &revoked,
        &expired,
        "lc_ünïcode",
    ] {
        let (status, mut body) = send(app.request_as(key, Method::GET, "/data_entries")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "key {key:?}");
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
}

#[tokio::test]
async fn the_key_is_accepted_in_all_three_headers() {
    let app = spawn_app().await;
    for (name, value) in [
        ("X-API-KEY", app.api_key.clone()),
        ("Authorization", format!("Bearer {}", app.api_key)),
        ("X-SBG-Auth-Token", app.api_key.clone()),
    ] {
        let response = app
            .anonymous(Method::GET, "/data_entries")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "header {name}");
    }
}

#[tokio::test]
async fn a_read_only_key_can_read_but_gets_403_on_writes() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let reader = app.key_for(&app.user_id, &[Scope::Read]).await;
    let (status, _) =
        send(app.request_as(&reader, Method::GET, &format!("/data_entries/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        app.request_as(&reader, Method::PATCH, &format!("/data_entries/{id}"))
            .json(&json!({"pipeline_status": "success"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    let (status, _) = send(
        app.request_as(&reader, Method::POST, "/data_entries")
            .json(&json!({"raw_name": "x", "char_source_type": "xps"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["pipeline_status"], "pending", "nothing changed");
}

/// `write` implies `read`: a write answers with what it wrote (a `{}` PATCH returns the
/// whole entry), so a write-only key may read what it may write.
#[tokio::test]
async fn a_write_only_key_may_read_what_it_may_write() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"k": 1}})).await;
    let writer = app.key_for(&app.user_id, &[Scope::Write]).await;
    for path in [
        "/data_entries".to_owned(),
        format!("/data_entries/{id}"),
        format!("/data_entries/{id}/metadata"),
        format!("/data_entries/{id}/history"),
        format!("/v2/files/{id}"),
        "/api_keys".to_owned(),
    ] {
        let (status, body) = send(app.request_as(&writer, Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    }
    // Its scopes are still listed as given.
    let (_, keys) = send(app.request_as(&writer, Method::GET, "/api_keys")).await;
    let listed: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|key| &key["scopes"])
        .collect();
    assert!(listed.contains(&&json!(["write"])), "{keys}");
}

/// The other direction stays closed: every route that changes something refuses a
/// read-only key, on both surfaces.
#[tokio::test]
async fn a_read_only_key_cannot_write_anywhere() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({"metadata": {"k": 1}})).await;
    let reader = app.key_for(&app.user_id, &[Scope::Read]).await;
    let (_, keys) = send(app.get("/api_keys")).await;
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    let mut checked = 0;
    for (method, pattern) in labcat::routes::served_routes() {
        // Reads, and the one read sent as a POST.
        if method == "get" || pattern == "/v2/bulk/files/get" {
            continue;
        }
        let path = pattern
            .replace("{data_id}", &id)
            .replace("{file_id}", &id)
            .replace("{key_id}", &key_id);
        let body = match (method, pattern.as_str()) {
            ("post", "/data_entries") => json!({"raw_name": "x", "char_source_type": "xps"}),
            ("patch", "/data_entries") => json!([{"data_id": id, "pipeline_status": "error"}]),
            ("post", "/physical_samples") => json!({"name": "wafer"}),
            ("post", "/api_keys") => json!({"name": "child", "scopes": ["read"]}),
            ("put", "/v2/files/{file_id}/tags") => json!(["tagged"]),
            ("post", "/v2/bulk/files/delete") => json!({"file_ids": [id]}),
            ("post", _) => json!({"items": [{"id": id, "name": "renamed"}]}),
            (_, path) if path.ends_with("/metadata") => json!({"k": 2}),
            _ => json!({"pipeline_status": "error", "name": "renamed"}),
        };
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let (status, answer) =
            send(app.request_as(&reader, method.clone(), &path).json(&body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} write routes");
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["revision"], 1, "nothing changed: {entry}");
    let (_, entries) = send(app.get("/data_entries")).await;
    assert_eq!(entries.as_array().unwrap().len(), 1);
    let (_, samples) = send(app.get("/physical_samples")).await;
    assert_eq!(samples, json!([]));
    let (_, keys) = send(app.get("/api_keys")).await;
    assert_eq!(
        keys.as_array().unwrap().len(),
        2,
        "no key minted or revoked"
    );
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "active")
    );
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT prefix, key_hash FROM api_keys")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let (prefix, hash) = &stored[0];
    assert!(app.api_key.starts_with(prefix.as_str()));
    assert!(prefix.len() < app.api_key.len());
    assert_eq!(hash.len(), 32);
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM api_keys t")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!dump.contains(&app.api_key));
}

#[tokio::test]
async fn another_owners_entry_is_a_404_exactly_like_a_missing_one() {
    let app = spawn_app().await;
    let id = app
        .create_entry_id(json!({"raw_name": "alice-only.mp4"}))
        .await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let missing = uuid::Uuid::new_v4();

    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let theirs = app
            .request_as(&bob, method.clone(), &format!("/data_entries/{id}"))
            .json(&json!({"raw_name": "stolen"}));
        let (status_theirs, mut body_theirs) = send(theirs).await;
        let nothing = app
            .request_as(&bob, method.clone(), &format!("/data_entries/{missing}"))
            .json(&json!({"raw_name": "stolen"}));
        let (status_missing, mut body_missing) = send(nothing).await;
        assert_eq!(status_theirs, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(status_missing, StatusCode::NOT_FOUND, "{method}");
        for body in [&mut body_theirs, &mut body_missing] {
            let object = body.as_object_mut().unwrap();
            object.remove("request_id");
            object.remove("detail");
        }
        assert_eq!(body_theirs, body_missing);
    }
    let (status, _) =
        send(app.request_as(&bob, Method::GET, &format!("/data_entries/{id}/metadata"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bob's search does not see it either, and Alice's entry is untouched.
    let (_, list) = send(app.request_as(&bob, Method::GET, "/data_entries")).await;
    assert_eq!(list, json!([]));
    let (_, entry) = send(app.get(&format!("/data_entries/{id}"))).await;
    assert_eq!(entry["raw_name"], "alice-only.mp4");
}

#[tokio::test]
async fn a_key_revoked_elsewhere_stops_working_within_five_seconds() {
    let app = spawn_app().await;
    let key = app.key_for("alice", &[Scope::Read]).await;
    let (status, _) = send(app.request_as(&key, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK, "the key is now cached");
    // Revoked by another instance (or the CLI): only the database knows.
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE prefix = $1")
        .bind(&key[..11])
        .execute(&app.pool)
        .await
        .unwrap();
    let revoked_at = std::time::Instant::now();
    loop {
        let (status, _) = send(app.request_as(&key, Method::GET, "/data_entries")).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_millis(5500),
            "still accepted 5 s after revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_expired_cached_key_is_refused_at_once() {
    let app = spawn_app().await;
    let key = app.key_for("alice", &[Scope::Read]).await;
    sqlx::query("UPDATE api_keys SET expires_at = now() + interval '1 second' WHERE prefix = $1")
        .bind(&key[..11])
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = send(app.request_as(&key, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = send(app.request_as(&key, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn two_different_keys_in_one_request_are_a_400_and_the_same_key_twice_is_one_key() {
    let app = spawn_app().await;
    let bob = app.key_for("bob", &[Scope::Read]).await;
    let bearer = |key: &str| format!("Bearer {key}");
    let ambiguous = [
        vec![
            ("X-API-KEY", app.api_key.clone()),
            ("X-API-KEY", bob.clone()),
        ],
        vec![
            ("X-API-KEY", app.api_key.clone()),
            ("Authorization", bearer(&bob)),
        ],
        vec![
            ("Authorization", bearer(&bob)),
            ("X-SBG-Auth-Token", app.api_key.clone()),
        ],
        vec![
            ("X-API-KEY", app.api_key.clone()),
            ("X-API-KEY", "lc_not_a_key".into()),
        ],
    ];
    for headers in &ambiguous {
        for path in ["/data_entries", "/v2/files"] {
            let mut request = app.anonymous(Method::GET, path);
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let (status, body) = send(request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {headers:?}");
            if path == "/data_entries" {
                assert_eq!(body["code"], "ambiguous_credentials", "{headers:?}");
            }
        }
    }
    let (status, _) = send(
        app.anonymous(Method::GET, "/data_entries")
            .header("X-API-KEY", &app.api_key)
            .header("Authorization", bearer(&app.api_key))
            .header("X-API-KEY", format!(" {} ", app.api_key)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_new_key_of_the_same_user_draws_from_the_same_rate_limit_bucket() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.read_per_second = 1;
        settings.rate_limit.read_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let (status, _) = send(app.get("/api_keys")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let fresh = app.key_for(&app.user_id, &[Scope::Read]).await;
    let (status, problem) = send(app.request_as(&fresh, Method::GET, "/api_keys")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(problem["code"], "rate_limited");
    let bob = app.key_for("bob", &[Scope::Read]).await;
    let (status, _) = send(app.request_as(&bob, Method::GET, "/api_keys")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another user has buckets of their own"
    );
}

/// A key of the right shape that no one was ever given.
fn guessed_key() -> String {
    format!("lc_{}{}", uuid::Uuid::new_v4().simple(), "Guessed1")
}

#[tokio::test]
async fn failed_authentications_from_one_address_are_refused_before_the_database_is_asked() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.auth_failure_burst = 3;
        settings.rate_limit.auth_failures_per_minute = 1;
    })
    .await;
    // Keys that check out cost nothing, however many there are.
    let mut checked_out = String::new();
    for _ in 0..5 {
        checked_out = app.key_for(&app.user_id, &[Scope::Read]).await;
        let (status, _) = send(app.request_as(&checked_out, Method::GET, "/v2/user")).await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..3 {
        let (status, _) = send(app.request_as(&guessed_key(), Method::GET, "/data_entries")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Without a database, a lookup would be a 503: a 429 means none was made.
    app.pool.close().await;
    let response = app
        .request_as(&guessed_key(), Method::GET, "/data_entries")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(
        response.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .starts_with("\"auth_failure\";q=3"),
        "{:?}",
        response.headers()
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("failed authentications from this address"),
        "{problem}"
    );
    // A key checked out moments ago is still trusted from the cache.
    let (status, _) = send(app.request_as(&checked_out, Method::GET, "/v2/user")).await;
    assert_eq!(status, StatusCode::OK);
}
