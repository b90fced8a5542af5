//! CORS for web frontends: only the origins in `cors.allowed_origins` (none by default, and
//! then no CORS headers at all). Requests from other origins are not blocked server-side;
//! without the CORS headers the browser keeps their responses from the page.

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::middleware::Condition;

use crate::config::CorsSettings;

/// Request headers the API reads.
const ALLOWED_HEADERS: &[&str] = &[
    "x-api-key",
    "authorization",
    "x-sbg-auth-token",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-request-id",
];

/// Response headers a page may read.
const EXPOSED_HEADERS: &[&str] = &[
    "etag",
    "location",
    "link",
    "x-total-count",
    "x-request-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "idempotency-replayed",
];

pub fn middleware(settings: &CorsSettings) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers(ALLOWED_HEADERS.iter().copied())
        .expose_headers(EXPOSED_HEADERS.iter().copied())
        .max_age(usize::try_from(settings.max_age_seconds).unwrap_or(usize::MAX));
    for origin in &settings.allowed_origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    Condition::new(!settings.allowed_origins.is_empty(), cors)
}

/// Why an entry of `cors.allowed_origins` cannot be an origin, if it cannot. Browsers send
/// `scheme://host[:port]` exactly, so anything else would never match.
pub fn origin_problem(origin: &str) -> Option<&'static str> {
    if origin == "*" {
        return None;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some("must look like https://host[:port]");
    };
    if scheme != "http" && scheme != "https" {
        return Some("must start with http:// or https://");
    }
    let valid_host = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !valid_host {
        return Some("must be scheme://host[:port] with no path or trailing slash");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::origin_problem;

    #[test]
    fn origins_must_be_what_browsers_send() {
        assert_eq!(origin_problem("https://app.example.org"), None);
        assert_eq!(origin_problem("http://localhost:3000"), None);
        assert_eq!(origin_problem("*"), None);
        assert!(origin_problem("https://app.example.org/").is_some());
        assert!(origin_problem("app.example.org").is_some());
        assert!(origin_problem("ftp://x").is_some());
    }
}
