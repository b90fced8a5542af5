//! The web UI at `/ui`: a few server-rendered page shells whose script (`app.js`, no
//! framework, no build step) calls the public JSON API with the session cookie, like any
//! frontend would. Every file is compiled into the binary and the pages load nothing from
//! elsewhere (their Content-Security-Policy says so to the browser).
//!
//! Signing in exchanges an API key for a session (`auth::session`); the cookie is
//! `HttpOnly`, so page scripts never see the key or the session.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::principal::{Credential, resolve};
use crate::auth::{KeyHash, Principal, session};
use crate::catalog;
use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Nothing but labcat itself: no CDN, no fonts, no frames, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the UI.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "get_root",
    tag = "ui",
    summary = "Redirects to the web UI",
    security(()),
    responses((status = 302, description = "To `/ui`.", headers(("Location" = String)))),
)]
pub async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/ui"))
        .finish()
}

/// `GET /ui`: the entries of the projects the user can read.
#[utoipa::path(
    get,
    path = "/ui",
    operation_id = "get_ui",
    tag = "ui",
    summary = "The web UI: entries",
    description = "An HTML page: the sign-in form without a session, else the entry table.",
    security(()),
    responses((status = 200, description = "The page.", content_type = "text/html")),
)]
pub async fn entries(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    page(&request, Page::Entries).await
}

/// `GET /ui/keys`: the user's API keys.
#[utoipa::path(
    get,
    path = "/ui/keys",
    operation_id = "get_ui_keys",
    tag = "ui",
    summary = "The web UI: your API keys",
    security(()),
    responses((status = 200, description = "The page.", content_type = "text/html")),
)]
pub async fn keys(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    page(&request, Page::Keys).await
}

/// `GET /ui/projects/{project_id}/members`: a project's members and their roles.
#[utoipa::path(
    get,
    path = "/ui/projects/{project_id}/members",
    operation_id = "get_ui_members",
    tag = "ui",
    summary = "The web UI: a project's members",
    security(()),
    params(("project_id" = String, Path, description = "The project's id.")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html"),
        (status = 404, description = "No such project, or one you cannot read.", content_type = "text/html"),
    ),
)]
pub async fn members(
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(principal) = session_principal(&request).await? else {
        return Ok(sign_in_page());
    };
    let state = app_state(&request);
    let found = match Uuid::parse_str(&path) {
        Ok(id) => match catalog::projects::get(&state.pool, &principal, id).await {
            Ok(_) => Some(id),
            Err(ApiError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        },
        Err(_) => None,
    };
    Ok(match found {
        Some(id) => shell(&principal, Page::Members(id)),
        None => not_found_page(&principal, "project"),
    })
}

/// `GET /ui/entries/{data_id}`: one entry. An entry the user cannot read is the same
/// "not found" page as a missing one, as in the API.
#[utoipa::path(
    get,
    path = "/ui/entries/{data_id}",
    operation_id = "get_ui_entry",
    tag = "ui",
    summary = "The web UI: one data entry",
    security(()),
    params(("data_id" = String, Path, description = "The entry's `data_id`.")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html"),
        (status = 404, description = "No such entry, or one you cannot read.", content_type = "text/html"),
    ),
)]
pub async fn entry(
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some(principal) = session_principal(&request).await? else {
        return Ok(sign_in_page());
    };
    let state = app_state(&request);
    let found = match Uuid::parse_str(&path) {
        Ok(id) => match catalog::entries::read(state, &principal, id).await {
            Ok(_) => Some(id),
            Err(ApiError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        },
        Err(_) => None,
    };
    Ok(match found {
        Some(id) => shell(&principal, Page::Entry(id)),
        None => not_found_page(&principal, "data entry"),
    })
}

/// `GET /ui/assets/{file}`: the page's script and style sheet.
#[utoipa::path(
    get,
    path = "/ui/assets/{file}",
    operation_id = "get_ui_asset",
    tag = "ui",
    summary = "A file of the web UI",
    security(()),
    params(("file" = String, Path, description = "`app.js` or `app.css`.")),
    responses(
        (status = 200, description = "The file, with its `ETag`.", content(("text/javascript"), ("text/css"))),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag."),
        (status = 404, response = crate::openapi::responses::NotFound),
    ),
)]
pub async fn asset(
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    static ETAGS: LazyLock<[String; 2]> = LazyLock::new(|| [etag_of(APP_JS), etag_of(APP_CSS)]);
    let (content_type, body, etag) = match path.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS, &ETAGS[0]),
        "app.css" => ("text/css; charset=utf-8", APP_CSS, &ETAGS[1]),
        other => {
            return Err(ApiError::NotFound {
                what: "UI file",
                id: other.to_owned(),
            });
        }
    };
    // Revalidated on every load (a new labcat may bring new files), fetched only when changed.
    let cached = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Ok(if cached {
        response.finish()
    } else {
        response.content_type(content_type).body(body)
    })
}

/// A strong ETag: the first 16 bytes of the file's SHA-256, in hex.
fn etag_of(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    api_key: String,
}

/// `POST /ui/sign_in`: exchanges an API key for a session cookie.
#[utoipa::path(
    post,
    path = "/ui/sign_in",
    operation_id = "ui_sign_in",
    tag = "ui",
    summary = "Sign in to the web UI",
    description = "Body `{\"api_key\": \"lc_...\"}`. Starts a session bound to the key (it \
        ends at sign-out, after `ui.session_hours`, or when the key is revoked or expires) \
        and sets it as an `HttpOnly`, `SameSite=Strict` cookie, which the API then accepts \
        in place of the key. Only from labcat's own pages: the request needs \
        `X-Labcat-CSRF: 1` and `Sec-Fetch-Site: same-origin` (or, from a browser that does \
        not send it, the server's own `Origin`), else 403 `cross_site_request`.",
    security(()),
    request_body(content = Object, description = "`{\"api_key\": \"lc_...\"}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in: `{\"user_id\", \"key_id\", \"expires_at\"}`, and the cookie.",
            body = Object, headers(("Set-Cookie" = String))),
        (status = 401, response = crate::openapi::responses::Unauthorized),
        (status = 403, response = crate::openapi::responses::Forbidden),
    ),
)]
pub async fn sign_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    session::check_cross_site(&request)?;
    let SignIn { api_key } = serde_json::from_slice(&body)
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    let hash = KeyHash::of_presented(api_key.trim()).ok_or_else(|| {
        state.metrics.auth_failure();
        ApiError::Unauthorized
    })?;
    let principal = resolve(&request, &state, Credential::Key(hash)).await?;
    // Signing in again replaces the browser's session rather than keeping two.
    if let Some(old) =
        session::presented_token(request.headers()).and_then(session::hash_of_presented)
    {
        db::ui_sessions::delete(&state.pool, old.as_bytes()).await?;
        state.key_cache.remove(&old);
    }
    let token = session::generate_token();
    let session_hash = KeyHash::of(&token);
    let now = Utc::now();
    let mut expires_at =
        now + chrono::Duration::from_std(state.ui_session).unwrap_or(chrono::Duration::hours(12));
    if let Some(key_ends) = principal.expires_at {
        expires_at = expires_at.min(key_ends);
    }
    db::ui_sessions::insert(
        &state.pool,
        session_hash.as_bytes(),
        principal.key_id,
        expires_at,
    )
    .await?;
    tracing::info!(key_id = %principal.key_id, user_id = %principal.user_id, "ui session started");
    request.extensions_mut().insert(principal.clone());
    let max_age = (expires_at - now).num_seconds().max(1);
    Ok(HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(&token, max_age, session::secure(&request)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "user_id": principal.user_id,
            "key_id": principal.key_id,
            "expires_at": crate::domain::timestamp::format(&expires_at),
        })))
}

/// `POST /ui/sign_out`: ends the session and clears its cookie.
#[utoipa::path(
    post,
    path = "/ui/sign_out",
    operation_id = "ui_sign_out",
    tag = "ui",
    summary = "Sign out of the web UI",
    description = "Ends the session of the cookie sent, if any, and clears the cookie. \
        The same same-origin rule as signing in.",
    security(()),
    responses(
        (status = 204, description = "Signed out.", headers(("Set-Cookie" = String))),
        (status = 403, response = crate::openapi::responses::Forbidden),
    ),
)]
pub async fn sign_out(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    session::check_cross_site(&request)?;
    if let Some(hash) =
        session::presented_token(request.headers()).and_then(session::hash_of_presented)
    {
        db::ui_sessions::delete(&state.pool, hash.as_bytes()).await?;
        state.key_cache.remove(&hash);
    }
    Ok(HttpResponse::NoContent()
        .insert_header((
            header::SET_COOKIE,
            session::clear_cookie(session::secure(&request)),
        ))
        .finish())
}

fn app_state(request: &HttpRequest) -> &AppState {
    request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered at startup")
}

/// The caller of a page: only the session cookie counts (a page's scripts call the API
/// with the cookie, not with a key). `None`: no session, or one that has ended.
async fn session_principal(request: &HttpRequest) -> Result<Option<Principal>, ApiError> {
    let Some(hash) =
        session::presented_token(request.headers()).and_then(session::hash_of_presented)
    else {
        return Ok(None);
    };
    match resolve(request, app_state(request), Credential::Session(hash)).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal.clone());
            Ok(Some(principal))
        }
        Err(ApiError::Unauthorized) => Ok(None),
        Err(error) => Err(error),
    }
}

#[derive(Debug, Clone, Copy)]
enum Page {
    Entries,
    Entry(Uuid),
    Keys,
    Members(Uuid),
}

async fn page(request: &HttpRequest, page: Page) -> Result<HttpResponse, ApiError> {
    Ok(match session_principal(request).await? {
        Some(principal) => shell(&principal, page),
        None => sign_in_page(),
    })
}

fn html(status: StatusCode, title: &str, body_attrs: &str, main: &str) -> HttpResponse {
    let title = escape(title);
    let document = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · labcat</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
<script type=\"module\" src=\"/ui/assets/app.js\"></script></head>\
<body{body_attrs}><a class=\"skip\" href=\"#main\">Skip to content</a>{main}</body></html>\n"
    );
    HttpResponse::build(status)
        .insert_header(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(document)
}

fn sign_in_page() -> HttpResponse {
    html(
        StatusCode::OK,
        "Sign in",
        " data-page=\"signin\"",
        "<main id=\"main\" class=\"signin\"><h1>labcat</h1>\
<form id=\"signin\" class=\"card\"><h2>Sign in</h2>\
<p>Sign in with an API key (from <code>labcat keys create</code>, or the one <code>labcat serve</code> printed). \
The key is exchanged for a session; this page does not keep it.</p>\
<label for=\"api-key\">API key</label>\
<input id=\"api-key\" name=\"api_key\" type=\"password\" autocomplete=\"off\" required spellcheck=\"false\">\
<button type=\"submit\">Sign in</button>\
<p id=\"signin-error\" class=\"error\" role=\"alert\"></p></form></main>",
    )
}

/// The frame every signed-in page shares; `app.js` fills `#main`.
fn header(principal: &Principal) -> String {
    format!(
        "<header class=\"top\"><a class=\"brand\" href=\"/ui\">labcat</a>\
<nav aria-label=\"Main\"><a href=\"/ui\">Entries</a><a href=\"/ui/keys\">API keys</a>\
<a id=\"members-link\" href=\"/ui\" hidden>Members</a></nav>\
<div class=\"who\"><label for=\"project-switcher\">Project</label>\
<select id=\"project-switcher\"><option value=\"\">All projects</option></select>\
<span class=\"user\">{}</span>\
<button id=\"sign-out\" type=\"button\">Sign out</button></div></header>",
        escape(&principal.user_id)
    )
}

fn shell(principal: &Principal, page: Page) -> HttpResponse {
    let (name, title, id) = match page {
        Page::Entries => ("entries", "Entries", None),
        Page::Entry(id) => ("entry", "Data entry", Some(id)),
        Page::Keys => ("keys", "API keys", None),
        Page::Members(id) => ("members", "Members", Some(id)),
    };
    let id = id.map_or_else(String::new, |id| format!(" data-id=\"{id}\""));
    let attrs = format!(
        " data-page=\"{name}\"{id} data-user=\"{}\" data-key=\"{}\"",
        escape(&principal.user_id),
        principal.key_id
    );
    let main = format!(
        "{}<main id=\"main\"><h1>{title}</h1><p class=\"loading\">Loading…</p></main>\
<div id=\"live\" class=\"visually-hidden\" aria-live=\"polite\"></div>",
        header(principal)
    );
    html(StatusCode::OK, title, &attrs, &main)
}

fn not_found_page(principal: &Principal, what: &str) -> HttpResponse {
    let main = format!(
        "{}<main id=\"main\"><h1>Not found</h1><p>There is no {what} here, or you cannot see it.</p>\
<p><a href=\"/ui\">Back to the entries</a></p></main>",
        header(principal)
    );
    let attrs = format!(
        " data-page=\"notfound\" data-user=\"{}\" data-key=\"{}\"",
        escape(&principal.user_id),
        principal.key_id
    );
    html(StatusCode::NOT_FOUND, "Not found", &attrs, &main)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
