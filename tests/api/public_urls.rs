//! Absolute URLs (`Link` headers, `/v2` `href`s) that clients follow with their keys: from
//! `server.public_base_url`, from forwarding headers only when a trusted proxy sent them,
//! else from the connection's own `Host`; never a scheme but `http` or `https`.

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::helpers::{TestApp, send, spawn_app, spawn_app_with};

/// The `Link: rel="next"` URL of a search page and the `href` of a `/v2` file, with the
/// headers `with` adds to both requests.
async fn absolute_urls(
    app: &TestApp,
    with: impl Fn(RequestBuilder) -> RequestBuilder,
) -> (String, String) {
    let id = app.create_entry_id(json!({})).await;
    app.create_entry_id(json!({})).await;
    let response = with(app.get("/data_entries?limit=1")).send().await.unwrap();
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let next = link[1..link.find('>').unwrap()].to_owned();
    let file = with(
        app.anonymous(Method::GET, &format!("/v2/files/{id}"))
            .header("X-SBG-Auth-Token", &app.api_key),
    );
    let (_, file): (_, Value) = send(file).await;
    (next, file["href"].as_str().unwrap().to_owned())
}

fn forged(request: RequestBuilder) -> RequestBuilder {
    request
        .header("Forwarded", "host=evil.example;proto=javascript")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "javascript")
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app().await;
    let (next, href) = absolute_urls(&app, forged).await;
    assert!(
        next.starts_with(&format!("{}/data_entries?", app.address)),
        "{next}"
    );
    assert!(
        href.starts_with(&format!("{}/v2/files/", app.address)),
        "{href}"
    );
}

#[tokio::test]
async fn the_connections_host_is_used_unless_it_is_not_a_host() {
    let app = spawn_app().await;
    let (next, href) = absolute_urls(&app, |request| {
        request.header("Host", "labcat.internal:8080")
    })
    .await;
    assert!(
        next.starts_with("http://labcat.internal:8080/data_entries?"),
        "{next}"
    );
    assert!(
        href.starts_with("http://labcat.internal:8080/v2/files/"),
        "{href}"
    );
    // Otherwise: the address labcat listens on.
    let (next, href) = absolute_urls(&app, |request| {
        request.header("Host", "evil.example/x>; rel=\"y\"")
    })
    .await;
    assert!(
        next.starts_with(&format!("{}/data_entries?", app.address)),
        "{next}"
    );
    assert!(
        href.starts_with(&format!("{}/v2/files/", app.address)),
        "{href}"
    );
}

#[tokio::test]
async fn a_trusted_proxy_says_where_clients_are_but_only_with_http_or_https() {
    let app = spawn_app_with(|settings| {
        settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let (next, href) = absolute_urls(&app, |request| {
        request
            .header("X-Forwarded-Host", "labcat.example.org")
            .header("X-Forwarded-Proto", "https")
    })
    .await;
    assert!(
        next.starts_with("https://labcat.example.org/data_entries?"),
        "{next}"
    );
    assert!(
        href.starts_with("https://labcat.example.org/v2/files/"),
        "{href}"
    );

    let (next, href) = absolute_urls(&app, forged).await;
    assert!(
        next.starts_with("http://evil.example/data_entries?"),
        "{next}"
    );
    assert!(href.starts_with("http://evil.example/v2/files/"), "{href}");
}

#[tokio::test]
async fn a_configured_public_base_url_wins_over_every_header() {
    let app = spawn_app_with(|settings| {
        settings.server.public_base_url = "https://labcat.example.org/catalogue/".into();
        settings.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let (next, href) = absolute_urls(&app, forged).await;
    assert!(
        next.starts_with("https://labcat.example.org/catalogue/data_entries?"),
        "{next}"
    );
    assert!(
        href.starts_with("https://labcat.example.org/catalogue/v2/files/"),
        "{href}"
    );
}
