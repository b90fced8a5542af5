//! HTTP only: extract, call the domain and the database, shape the response.

/// A route table, written once. It expands into `register` (what actix serves: one
/// resource per path, made by the invoking module's `resource(path, methods)`) and `ROUTES`
/// (the same pairs as data), which the OpenAPI test compares with `/openapi.json`, so no
/// route can be served undocumented. Defined before the modules so `v2` can use it too.
macro_rules! route_table {
    ($($path:literal => { $($method:ident => $handler:path),+ $(,)? })+) => {
        /// Every `(method, path)` this table serves; methods lower-case as in OpenAPI.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)+];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.service(resource($path, &[$(stringify!($method)),+])$(.$method($handler))+);)+
        }
    };
}

// `pub(crate)` where the OpenAPI description (crate::openapi) names the handlers.
pub(crate) mod api_keys;
mod body;
pub(crate) mod bulk;
pub(crate) mod data_entries;
pub(crate) mod docs;
pub(crate) mod health;
pub mod idempotency;
pub(crate) mod metadata;
pub(crate) mod metrics;
pub(crate) mod physical_samples;
mod response;
pub(crate) mod v2;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, Resource, ResponseError, web};

use crate::error::ApiError;

route_table! {
    "/healthz" => { get => health::healthz }
    "/readyz" => { get => health::readyz }
    "/metrics" => { get => metrics::metrics }
    "/openapi.json" => { get => docs::openapi_json }
    "/docs" => { get => docs::index }
    "/docs/{file}" => { get => docs::file }
    "/api_keys" => { get => api_keys::list, post => api_keys::create }
    "/api_keys/{key_id}" => { delete => api_keys::revoke }
    "/data_entries" => {
        get => data_entries::search,
        post => data_entries::create,
        patch => data_entries::bulk_update,
    }
    "/data_entries/{data_id}" => {
        get => data_entries::get,
        patch => data_entries::update,
        delete => data_entries::delete,
    }
    "/data_entries/{data_id}/metadata" => {
        get => metadata::get,
        patch => metadata::merge,
        put => metadata::replace,
    }
    "/data_entries/{data_id}/history" => { get => data_entries::history }
    "/physical_samples" => { get => physical_samples::list, post => physical_samples::create }
    "/physical_samples/{physical_sample_id}" => { get => physical_samples::get }
}

/// Every `(method, path)` actix serves, `/v2` included: what `/openapi.json` must describe.
pub fn served_routes() -> Vec<(&'static str, String)> {
    let native = ROUTES
        .iter()
        .map(|(method, path)| (*method, path.to_string()));
    let v2 = v2::ROUTES
        .iter()
        .map(|(method, path)| (*method, format!("{}{path}", v2::PREFIX)));
    native.chain(v2).collect()
}

/// Whether a native route with this pattern (as actix reports it) takes this method.
pub fn serves(method: &Method, pattern: &str) -> bool {
    ROUTES
        .iter()
        .any(|(m, p)| *p == pattern && m.eq_ignore_ascii_case(method.as_str()))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
    // The Seven Bridges-compatible surface: its own shapes, outside the native table.
    cfg.service(v2::scope());
    cfg.default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::NoRoute)
    }));
}

/// A resource whose unsupported methods get a 405 problem with the `Allow` header
/// (RFC 9110 requires it) rather than an empty body.
fn resource(path: &str, methods: &[&str]) -> Resource {
    let allow = methods
        .iter()
        .map(|method| method.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    let allow = HeaderValue::from_str(&allow).expect("method names are valid header text");
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::MethodNotAllowed.error_response();
            response.headers_mut().insert(header::ALLOW, allow);
            response
        }
    }))
}
