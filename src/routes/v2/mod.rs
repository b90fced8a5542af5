//! The Seven Bridges-compatible surface: partners point `sevenbridges-python` (or their own
//! code written against the Seven Bridges / Cavatica API) at `http://<labcat>/v2`. Files are
//! data entries (`id` = `data_id`, `name` = `raw_name`, the same `metadata`); every handler
//! calls the catalogue operations the native routes use, and only the shapes differ.
//!
//! Every response here carries `X-RateLimit-Limit|Remaining|Reset` (the client caches them
//! and `rate_limit_sleeper` needs an integer Reset on a 429), and every error is in the
//! Seven Bridges shape (see `error`).

// `pub(crate)` where the OpenAPI description (crate::openapi) names the handlers.
pub(crate) mod bulk;
mod error;
pub(crate) mod files;
pub(crate) mod projects;
pub(crate) mod shape;
pub(crate) mod user;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{HttpServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;
use crate::rate_limit::RateLimitStatus;
use crate::startup::AppState;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Where the scope is mounted; `ROUTES` are relative to it.
pub const PREFIX: &str = "/v2";

// The same kind of table as the native routes (see `route_table!`).
route_table! {
    "/files" => { get => files::list }
    "/files/{file_id}" => { get => files::get, patch => files::update, delete => files::delete }
    "/files/{file_id}/metadata" => {
        get => files::metadata,
        patch => files::merge_metadata,
        put => files::replace_metadata,
    }
    "/files/{file_id}/tags" => { put => files::replace_tags }
    "/bulk/files/get" => { post => bulk::get }
    "/bulk/files/delete" => { post => bulk::delete }
    "/bulk/files/update" => { post => bulk::update }
    "/bulk/files/edit" => { post => bulk::edit }
    // NormalizePath trims the trailing slash of the client's `/v2/projects/`.
    "/projects" => { get => projects::list, post => projects::create }
    "/projects/{owner}" => { get => projects::list_owner }
    "/projects/{owner}/{project}" => {
        get => projects::get,
        patch => projects::update,
        delete => projects::delete,
    }
    "/projects/{owner}/{project}/members" => {
        get => projects::members,
        post => projects::add_member,
    }
    "/projects/{owner}/{project}/members/{username}" => {
        get => projects::member,
        delete => projects::remove_member,
    }
    "/projects/{owner}/{project}/members/{username}/permissions" => {
        patch => projects::patch_permissions,
        put => projects::put_permissions,
    }
    "/user" => { get => user::me }
    "/users/{username}" => { get => user::get }
    "/rate_limit" => { get => user::rate_limit }
}

/// The `/v2` scope, ready to register.
pub fn scope() -> impl HttpServiceFactory {
    web::scope(PREFIX)
        .wrap(from_fn(sbg_responses))
        .configure(register)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NoRoute)
        }))
}

/// A resource whose other methods get a Seven Bridges 405 with the `Allow` header.
fn resource(path: &str, methods: &[&str]) -> Resource {
    let allow = super::allow_header(methods);
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = sbg_response(&ApiError::MethodNotAllowed, None);
            response.headers_mut().insert(header::ALLOW, allow);
            response
        }
    }))
}

/// `error` as a whole Seven Bridges error response, keeping the headers (Retry-After,
/// WWW-Authenticate, ETag, …) of the native response it replaces.
fn sbg_response(error: &ApiError, native: Option<&header::HeaderMap>) -> HttpResponse {
    let (status, body) = error::sbg_error(error);
    let mut response = HttpResponse::build(status);
    for (name, value) in native.into_iter().flatten() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.append_header((name.clone(), value.clone()));
        }
    }
    response.json(body)
}

/// Middleware: errors in the Seven Bridges shape (whether a handler or an extractor
/// failed), and the rate-limit headers on every response.
async fn sbg_responses(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    Ok(in_sbg_shape(next.call(request).await?))
}

/// A response as every `/v2` response goes out: an error in the Seven Bridges shape, and
/// the rate-limit headers.
pub fn in_sbg_shape(
    response: ServiceResponse<impl MessageBody + 'static>,
) -> ServiceResponse<BoxBody> {
    let replacement = response.response().error().map(|error| {
        match error.as_error::<ApiError>() {
            Some(error) => sbg_response(error, Some(response.headers())),
            // Not ours (actix itself): same shape, by its status.
            None => {
                let (status, code) = error::by_status(error.as_response_error().status_code());
                HttpResponse::build(status).json(serde_json::json!({
                    "status": status.as_u16(),
                    "code": code,
                    "message": error.to_string(),
                    "more_info": "",
                }))
            }
        }
    });
    let mut response = match replacement {
        Some(replacement) => response.into_response(replacement),
        None => response.map_into_boxed_body(),
    };
    let (limit, remaining, reset) = standing(response.request());
    let headers = response.headers_mut();
    for (name, value) in [(LIMIT, limit), (REMAINING, remaining), (RESET, reset)] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

/// The caller's rate-limit standing as Seven Bridges reports it: the bucket's size, the
/// tokens left, and when it is full again (epoch seconds). The key's bucket when the
/// request was authenticated; a full bucket when it was not; -1 when nothing is limited.
fn standing(request: &HttpRequest) -> (i64, i64, i64) {
    let now = chrono::Utc::now().timestamp();
    if let Some(status) = request.extensions().get::<RateLimitStatus>() {
        let reset = now.saturating_add(i64::try_from(status.reset_secs).unwrap_or(i64::MAX));
        return (status.quota.into(), status.remaining.into(), reset);
    }
    let limits = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.rate_limits.as_ref());
    match limits {
        Some(limits) => {
            let quota = limits.quota(request.method()).into();
            (quota, quota, now)
        }
        None => (-1, -1, now),
    }
}
