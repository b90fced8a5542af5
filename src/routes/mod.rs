//! HTTP only: extract, call the domain and the database, shape the response.

/// A route table, written once. It expands into `register` (what actix serves: one
/// resource per path, made by the invoking module's `resource(path, methods)`, each method
/// routed by `method_route`, so every GET answers HEAD too) and `ROUTES` (the same pairs as
/// data), which the OpenAPI test compares with `/openapi.json`, so no route can be served
/// undocumented. Defined before the modules so `v2` can use it too.
macro_rules! route_table {
    ($($path:literal => { $($method:ident => $handler:path),+ $(,)? })+) => {
        /// Every `(method, path)` this table serves; methods lower-case as in OpenAPI. HEAD
        /// is left implicit (every `get` answers it), as OpenAPI descriptions usually do.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)+];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.service(
                resource($path, &[$(stringify!($method)),+])
                    $(.route($crate::routes::method_route(stringify!($method)).to($handler)))+
            );)+
        }
    };
}

// `pub(crate)` where the OpenAPI description (crate::openapi) names the handlers.
pub(crate) mod api_keys;
mod body;
pub(crate) mod bulk;
pub(crate) mod data_entries;
pub(crate) mod discovery;
pub(crate) mod docs;
pub(crate) mod events;
pub(crate) mod health;
pub mod idempotency;
pub(crate) mod metadata;
pub(crate) mod metrics;
pub(crate) mod physical_samples;
pub(crate) mod projects;
pub mod public_url;
mod response;
pub(crate) mod schemas;
pub(crate) mod ui;
pub(crate) mod v2;
pub(crate) mod webhooks;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, Resource, ResponseError, Route, guard, web};

use crate::error::ApiError;

route_table! {
    "/" => { get => ui::root }
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
    // Before `/data_entries/{data_id}`: actix tries resources in this order.
    "/data_entries/facets" => { get => discovery::facets }
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
    "/metadata/keys" => { get => discovery::keys }
    "/events" => { get => events::list }
    "/physical_samples" => { get => physical_samples::list, post => physical_samples::create }
    "/physical_samples/{physical_sample_id}" => { get => physical_samples::get }
    "/projects" => { get => projects::list, post => projects::create }
    "/projects/{project_id}" => {
        get => projects::get,
        patch => projects::update,
        delete => projects::delete,
    }
    "/projects/{project_id}/members" => { get => projects::members }
    "/projects/{project_id}/members/{user_id}" => {
        put => projects::put_member,
        delete => projects::remove_member,
    }
    "/projects/{project_id}/physical_samples" => { get => projects::physical_samples }
    "/projects/{project_id}/webhooks" => { get => webhooks::list, post => webhooks::create }
    "/projects/{project_id}/webhooks/{webhook_id}" => {
        get => webhooks::get,
        patch => webhooks::update,
        delete => webhooks::delete,
    }
    "/projects/{project_id}/webhooks/{webhook_id}/deliveries" => { get => webhooks::deliveries }
    "/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver" => {
        post => webhooks::redeliver,
    }
    // Before `/projects/{project_id}/schemas/{char_source_type}`, as for the facets above.
    "/projects/{project_id}/schemas/{char_source_type}/versions" => { get => schemas::versions }
    "/projects/{project_id}/schemas/{char_source_type}/check" => { post => schemas::check }
    "/projects/{project_id}/schemas/{char_source_type}" => {
        get => schemas::get,
        put => schemas::put,
        delete => schemas::delete,
    }
    // The web UI (pages, their two files, signing in and out).
    "/ui" => { get => ui::entries }
    "/ui/keys" => { get => ui::keys }
    "/ui/entries/{data_id}" => { get => ui::entry }
    "/ui/projects/{project_id}/members" => { get => ui::members }
    "/ui/assets/{file}" => { get => ui::asset }
    "/ui/sign_in" => { post => ui::sign_in }
    "/ui/sign_out" => { post => ui::sign_out }
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

/// The two surfaces: their errors (and some headers) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Native,
    /// `/v2`, the Seven Bridges-compatible one.
    V2,
}

impl Surface {
    /// A response made by a middleware outside the surface's own (an idempotency replay or
    /// refusal), finished as the surface finishes its handlers' responses.
    pub fn finish(self, response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
        match self {
            Surface::Native => response,
            Surface::V2 => v2::in_sbg_shape(response),
        }
    }
}

/// The surface whose route has this pattern (as actix reports it, `/v2` prefix included),
/// if that route takes this method.
pub fn surface_serving(method: &Method, pattern: &str) -> Option<Surface> {
    let takes = |routes: &[(&str, &str)], pattern: &str| {
        routes
            .iter()
            .any(|(m, p)| *p == pattern && m.eq_ignore_ascii_case(method.as_str()))
    };
    match pattern.strip_prefix(v2::PREFIX) {
        Some(relative) if takes(v2::ROUTES, relative) => Some(Surface::V2),
        _ if takes(ROUTES, pattern) => Some(Surface::Native),
        _ => None,
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
    // The Seven Bridges-compatible surface: its own shapes, outside the native table.
    cfg.service(v2::scope());
    cfg.default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::NoRoute)
    }));
}

/// The route for one method of a route table (`get`, `post`, … as OpenAPI spells them).
/// A GET route answers HEAD as well: the same handler, so the same status and headers, and
/// actix sends no body for a HEAD (keeping the GET's `Content-Length`).
pub(crate) fn method_route(method: &str) -> Route {
    if method == "get" {
        return web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    }
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .expect("route tables name HTTP methods");
    web::route().method(method)
}

/// The `Allow` header of a resource serving `methods` (HEAD wherever GET is).
pub(crate) fn allow_header(methods: &[&str]) -> HeaderValue {
    let allow = methods
        .iter()
        .flat_map(|method| match *method {
            "get" => vec!["GET".to_owned(), "HEAD".to_owned()],
            other => vec![other.to_ascii_uppercase()],
        })
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::from_str(&allow).expect("method names are valid header text")
}

/// A resource whose unsupported methods get a 405 problem with the `Allow` header
/// (RFC 9110 requires it) rather than an empty body.
fn resource(path: &str, methods: &[&str]) -> Resource {
    let allow = allow_header(methods);
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::MethodNotAllowed.error_response();
            response.headers_mut().insert(header::ALLOW, allow);
            response
        }
    }))
}
