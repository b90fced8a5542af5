//! Sessions of the web UI. A browser signs in with an API key and gets a random session
//! token in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when labcat is reached over
//! https), so page scripts never hold the key or the session. The token is stored as its
//! SHA-256, bound to the key; a session is the key's `Principal`, re-checked like a key.
//!
//! A cookie is sent by the browser on its own, so a write authenticated by one must also
//! prove it comes from labcat's own pages: an `X-Labcat-CSRF: 1` header (which a form or a
//! cross-origin page cannot send without a CORS preflight, which labcat never grants for it)
//! and a same-origin signal (`Sec-Fetch-Site: same-origin`, or from a browser that does not
//! send that header, `Origin` equal to labcat's own origin).

use actix_web::HttpRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap};
use rand::Rng;
use rand::distr::Alphanumeric;

use super::KeyHash;
use crate::error::ApiError;
use crate::routes::public_url;

pub const COOKIE_NAME: &str = "labcat_session";
/// The header labcat's pages send on every write.
pub const CSRF_HEADER: &str = "x-labcat-csrf";
const TOKEN_PREFIX: &str = "lcs_";
const RANDOM_CHARS: usize = 43;

/// A new session token (`lcs_` and 43 random alphanumerics, about 256 bits).
pub fn generate_token() -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_CHARS)
        .map(char::from)
        .collect();
    format!("{TOKEN_PREFIX}{random}")
}

/// The hash a presented token is stored and cached under, if it could be a token at all
/// (junk is refused without a database round trip). Tokens and keys have different
/// prefixes, so their hashes never meet in the key cache.
pub fn hash_of_presented(token: &str) -> Option<KeyHash> {
    let random = token.strip_prefix(TOKEN_PREFIX)?;
    let plausible =
        random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then(|| KeyHash::of(token))
}

/// The session cookie's value, if the request carries one.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://host[:port]` of labcat as the client reached it.
fn own_origin(request: &HttpRequest) -> String {
    let base = public_url::base(request);
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => base,
    }
}

/// Whether the request says it comes from labcat's own origin (see the module docs).
/// `Sec-Fetch-Site` is set by the browser alone (no page can set or change it), so where a
/// browser sends it, it decides: it holds even behind a TLS-terminating proxy that labcat
/// was not told about, where `Origin` names https and labcat sees http. Browsers that do
/// not send it are judged by `Origin`.
fn same_origin(request: &HttpRequest) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    match headers.get(header::ORIGIN).map(|value| value.to_str()) {
        Some(Ok(origin)) => origin.eq_ignore_ascii_case(&own_origin(request)),
        _ => false,
    }
}

/// For a request authenticated by the session cookie (or signing in or out): unsafe
/// methods must come from labcat's own pages, else 403 `cross_site_request`.
pub fn check_cross_site(request: &HttpRequest) -> Result<(), ApiError> {
    if is_safe(request.method()) {
        return Ok(());
    }
    let marked = request
        .headers()
        .get(CSRF_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1");
    if marked && same_origin(request) {
        Ok(())
    } else {
        Err(ApiError::CrossSiteRequest)
    }
}

/// Whether the cookie must be `Secure`: labcat is reached over https.
pub fn secure(request: &HttpRequest) -> bool {
    public_url::base(request).starts_with("https://")
}

/// The `Set-Cookie` value that stores `token` for `max_age_seconds`.
pub fn set_cookie(token: &str, max_age_seconds: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised_and_junk_is_not() {
        let token = generate_token();
        assert!(hash_of_presented(&token).is_some());
        assert!(hash_of_presented("lcs_short").is_none());
        assert!(hash_of_presented("lc_0123456789012345678901234567890123456789").is_none());
        assert_ne!(
            hash_of_presented(&token),
            hash_of_presented(&generate_token())
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; labcat_session=lcs_x; b=2".parse().unwrap(),
        );
        assert_eq!(presented_token(&headers), Some("lcs_x"));
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let cookie = set_cookie("lcs_x", 60, true);
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
        assert!(!clear_cookie(false).contains("Secure"));
    }
}
