//! The web UI: signing in exchanges a key for a session cookie that the API accepts in place
//! of the key; writes with the cookie must come from labcat's own pages; sessions end at
//! sign-out, with their key, and at their end; entry pages answer like the API.

use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, RequestBuilder, StatusCode, redirect};
use serde_json::{Value, json};

use crate::helpers::{TestApp, id_of, send, spawn_app, spawn_app_with};
use labcat::domain::Scope;

const CSRF: &str = "X-Labcat-CSRF";

/// What the UI's pages send: their own origin and the CSRF header.
fn from_page(app: &TestApp, request: RequestBuilder) -> RequestBuilder {
    request
        .header(ORIGIN, &app.address)
        .header("Sec-Fetch-Site", "same-origin")
        .header(CSRF, "1")
}

/// Signs in with `key` as the page does; returns the `Set-Cookie` value and `name=value`.
async fn sign_in(app: &TestApp, key: &str) -> (String, String) {
    let response = from_page(app, app.anonymous(Method::POST, "/ui/sign_in"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (set_cookie, pair)
}

fn with_cookie(app: &TestApp, cookie: &str, method: Method, path: &str) -> RequestBuilder {
    app.anonymous(method, path).header(COOKIE, cookie)
}

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_cookie_that_the_api_accepts_in_place_of_the_key() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    let (set_cookie, cookie) = sign_in(&app, &app.api_key).await;
    assert!(
        set_cookie.starts_with("labcat_session=lcs_"),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert!(
        !set_cookie.contains(&app.api_key),
        "the key is not the cookie"
    );
    let (status, entry) = send(with_cookie(
        &app,
        &cookie,
        Method::GET,
        &format!("/data_entries/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["data_id"], id);
    // Stored hashed: the token is nowhere in the table.
    let token = cookie.split_once('=').unwrap().1;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT session_hash FROM ui_sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert_ne!(stored[0], token.as_bytes());
}

#[tokio::test]
async fn behind_https_the_cookie_is_secure() {
    let app =
        spawn_app_with(|s| s.server.public_base_url = "https://labcat.example.org".into()).await;
    let response = app
        .anonymous(Method::POST, "/ui/sign_in")
        .header(ORIGIN, "https://labcat.example.org")
        .header(CSRF, "1")
        .json(&json!({"api_key": app.api_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
}

#[tokio::test]
async fn a_bad_key_does_not_sign_in() {
    let app = spawn_app().await;
    for key in [
        "lc_0123456789012345678901234567890123456789",
        "nonsense",
        "",
    ] {
        let (status, body) = send(
            from_page(&app, app.anonymous(Method::POST, "/ui/sign_in"))
                .json(&json!({"api_key": key})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}");
        assert_eq!(body["code"], "unauthorized");
    }
    let (status, _) =
        send(from_page(&app, app.anonymous(Method::POST, "/ui/sign_in")).body("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        from_page(&app, app.anonymous(Method::POST, "/ui/sign_in"))
            .json(&json!({"api_key": app.api_key, "extra": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The browser sends the cookie with any request to labcat, also one a page of another
/// site makes; none of those can change anything.
#[tokio::test]
async fn a_request_from_another_origin_cannot_change_anything() {
    let app =
        spawn_app_with(|s| s.cors.allowed_origins = vec!["https://partner.example.org".into()])
            .await;
    let entry = app.create_entry(json!({"metadata": {"k": 1}})).await;
    let id = id_of(&entry);
    let (_, cookie) = sign_in(&app, &app.api_key).await;
    let path = format!("/data_entries/{id}");
    let patch = json!({"raw_name": "changed.raw"});
    let cross_site: Vec<(&str, RequestBuilder)> = vec![
        (
            "another origin, with the header",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(ORIGIN, "https://evil.example.org")
                .header(CSRF, "1")
                .json(&patch),
        ),
        (
            "an allowed CORS origin is still another origin",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(ORIGIN, "https://partner.example.org")
                .header(CSRF, "1")
                .json(&patch),
        ),
        (
            "a cross-site form (no header)",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(ORIGIN, "https://evil.example.org")
                .header("Sec-Fetch-Site", "cross-site")
                .header("Content-Type", "text/plain")
                .body(patch.to_string()),
        ),
        (
            "same origin but no header",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(ORIGIN, &app.address)
                .json(&patch),
        ),
        (
            "the header but no origin signal",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(CSRF, "1")
                .json(&patch),
        ),
        (
            "the browser says cross-site, whatever Origin claims",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header(ORIGIN, &app.address)
                .header("Sec-Fetch-Site", "cross-site")
                .header(CSRF, "1")
                .json(&patch),
        ),
        (
            "a same-site subdomain",
            with_cookie(&app, &cookie, Method::PATCH, &path)
                .header("Sec-Fetch-Site", "same-site")
                .header(CSRF, "1")
                .json(&patch),
        ),
        (
            "a delete from elsewhere",
            with_cookie(&app, &cookie, Method::DELETE, &path)
                .header(ORIGIN, "null")
                .header(CSRF, "1"),
        ),
        (
            "a new key from elsewhere",
            with_cookie(&app, &cookie, Method::POST, "/api_keys")
                .header(ORIGIN, "https://evil.example.org")
                .header(CSRF, "1")
                .json(&json!({"name": "stolen", "scopes": ["read"]})),
        ),
        (
            "a metadata replace from elsewhere",
            with_cookie(&app, &cookie, Method::PUT, &format!("{path}/metadata"))
                .header(ORIGIN, "https://evil.example.org")
                .json(&json!({})),
        ),
    ];
    for (case, request) in cross_site {
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(body["code"], "cross_site_request", "{case}");
    }
    // Signing in or out from elsewhere is refused too (no login CSRF).
    let (status, _) = send(
        app.anonymous(Method::POST, "/ui/sign_in")
            .header(ORIGIN, "https://evil.example.org")
            .header(CSRF, "1")
            .json(&json!({"api_key": app.api_key})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        with_cookie(&app, &cookie, Method::POST, "/ui/sign_out")
            .header(ORIGIN, "https://evil.example.org"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing changed.
    let (_, now) = send(app.get(&path)).await;
    assert_eq!(now, entry);
    let (_, keys) = send(app.get("/api_keys")).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    // A preflight from another origin never lets it send the CSRF header or credentials.
    let preflight = app
        .anonymous(Method::OPTIONS, &path)
        .header(ORIGIN, "https://partner.example.org")
        .header("Access-Control-Request-Method", "PATCH")
        .header("Access-Control-Request-Headers", "x-labcat-csrf")
        .send()
        .await
        .unwrap();
    let allowed = preflight
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    assert!(!allowed.contains("x-labcat-csrf"), "{allowed}");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // The same write from labcat's own page goes through.
    let (status, changed) =
        send(from_page(&app, with_cookie(&app, &cookie, Method::PATCH, &path)).json(&patch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["raw_name"], "changed.raw");
    // With Sec-Fetch-Site alone (no Origin), too.
    let (status, _) = send(
        with_cookie(&app, &cookie, Method::PATCH, &path)
            .header("Sec-Fetch-Site", "same-origin")
            .header(CSRF, "1")
            .json(&json!({"raw_name": "again.raw"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn_app().await;
    let (_, cookie) = sign_in(&app, &app.api_key).await;
    let (status, _) = send(with_cookie(&app, &cookie, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);
    let response = from_page(
        &app,
        with_cookie(&app, &cookie, Method::POST, "/ui/sign_out"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("labcat_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, _) = send(with_cookie(&app, &cookie, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let app = spawn_app().await;
    let key = app
        .key_for(&app.user_id, &[Scope::Read, Scope::Write])
        .await;
    let (_, cookie) = sign_in(&app, &key).await;
    let (status, keys) = send(with_cookie(&app, &cookie, Method::GET, "/api_keys")).await;
    assert_eq!(status, StatusCode::OK);
    let key_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| key.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Revoked through the API with the other key: the session of this one ends at once.
    let (status, _) = send(app.request(Method::DELETE, &format!("/api_keys/{key_id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(with_cookie(&app, &cookie, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And a page now asks to sign in again.
    let page = with_cookie(&app, &cookie, Method::GET, "/ui")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("API key") && page.contains("Sign in"));
}

#[tokio::test]
async fn a_session_ends_when_its_time_is_up() {
    let app = spawn_app_with(|s| s.auth.key_cache_seconds = 0).await;
    let (_, cookie) = sign_in(&app, &app.api_key).await;
    let (status, _) = send(with_cookie(&app, &cookie, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::OK);
    sqlx::query("UPDATE ui_sessions SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, _) = send(with_cookie(&app, &cookie, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_junk_or_unknown_cookie_is_a_401_like_a_bad_key() {
    let app = spawn_app().await;
    for cookie in [
        "labcat_session=junk",
        "labcat_session=lcs_0123456789012345678901234567890123456789012",
        "other=1",
    ] {
        let (status, body) = send(with_cookie(&app, cookie, Method::GET, "/data_entries")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie}");
        assert_eq!(body["code"], "unauthorized");
    }
}

#[tokio::test]
async fn entry_pages_answer_with_the_api_access_rules() {
    let app = spawn_app().await;
    let own = app.create_entry_id(json!({"raw_name": "mine.raw"})).await;
    let bob = app.key_for("bob", &[Scope::Read, Scope::Write]).await;
    let (status, theirs) = send(
        app.request_as(&bob, Method::POST, "/data_entries")
            .json(&json!({"raw_name": "bobs.raw", "char_source_type": "xps"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let theirs = id_of(&theirs);
    let (_, cookie) = sign_in(&app, &app.api_key).await;
    let page = |path: String| {
        let request = with_cookie(&app, &cookie, Method::GET, &path);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let csp = response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            (status, csp, response.text().await.unwrap())
        }
    };
    let (status, csp, html) = page(format!("/ui/entries/{own}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert!(html.contains(&format!("data-id=\"{own}\"")));
    assert!(html.contains("Sign out"));
    assert!(
        !html.contains(&app.api_key) && !html.contains("lcs_"),
        "no secret in the page"
    );
    let missing = uuid::Uuid::new_v4();
    let (status, _, missing_html) = page(format!("/ui/entries/{missing}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, theirs_html) = page(format!("/ui/entries/{theirs}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs_html, missing_html,
        "another project's entry is just not found"
    );
    let (status, _, junk_html) = page("/ui/entries/not-a-uuid".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(junk_html, missing_html);
    // Another user's project is not found either; one's own is there.
    let (_, projects) = send(app.get("/projects")).await;
    let project = projects[0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = page(format!("/ui/projects/{project}/members")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, bobs_projects) = send(app.request_as(&bob, Method::GET, "/projects")).await;
    let bobs = bobs_projects[0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = page(format!("/ui/projects/{bobs}/members")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_session_every_page_is_the_sign_in_form_and_the_root_redirects_to_it() {
    let app = spawn_app().await;
    let id = app.create_entry_id(json!({})).await;
    for path in [
        "/ui".to_owned(),
        "/ui/keys".to_owned(),
        format!("/ui/entries/{id}"),
    ] {
        // A key header does not make a page session: the page's scripts use the cookie.
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("<label for=\"api-key\">API key</label>"),
            "{path}"
        );
        assert!(html.contains(">Sign in</button>"), "{path}");
    }
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[LOCATION], "/ui");
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let response = app
            .anonymous(Method::GET, &format!("/ui/assets/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{file} loads nothing from elsewhere"
        );
    }
    let (status, body) = send(app.anonymous(Method::GET, "/ui/assets/nope.js")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn idempotency_keys_are_refused_on_signing_in() {
    let app = spawn_app().await;
    let (status, body): (StatusCode, Value) = send(
        from_page(&app, app.anonymous(Method::POST, "/ui/sign_in"))
            .header("Idempotency-Key", "once")
            .json(&json!({"api_key": app.api_key})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_header");
}

#[tokio::test]
async fn signing_in_again_replaces_the_session() {
    let app = spawn_app().await;
    let (_, first) = sign_in(&app, &app.api_key).await;
    let response = from_page(&app, with_cookie(&app, &first, Method::POST, "/ui/sign_in"))
        .json(&json!({"api_key": app.api_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = send(with_cookie(&app, &first, Method::GET, "/data_entries")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ui_sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn the_ui_files_are_revalidated_by_etag() {
    let app = spawn_app().await;
    let first = app
        .anonymous(Method::GET, "/ui/assets/app.js")
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let again = app
        .anonymous(Method::GET, "/ui/assets/app.js")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
}
