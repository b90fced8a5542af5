//! The OpenAPI 3.1 description of the HTTP API, built from the handlers' `#[utoipa::path]`
//! attributes and served at `/openapi.json` (Swagger UI at `/docs`). The route table in
//! `routes` is what actix serves; a test checks that the two list the same operations.

pub mod params;
pub mod responses;
pub mod schemas;
pub mod v2;

use std::sync::LazyLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi};

use crate::routes::v2::{
    bulk as v2_bulk, files as v2_files, projects as v2_projects, user as v2_user,
};
use crate::routes::{
    api_keys, data_entries, discovery, docs, events, health, metadata, metrics, physical_samples,
    projects, schemas as metadata_schemas, ui, webhooks,
};
use responses::*;
use v2::{
    SbgBadRequest, SbgConflict, SbgForbidden, SbgNotFound, SbgServiceUnavailable,
    SbgTooManyRequests, SbgUnauthorized, SbgUnsupportedMediaType,
};

/// The names the operations' `security` requirements use.
pub const API_KEY: &str = "ApiKey";
pub const BEARER: &str = "Bearer";
pub const SBG_TOKEN: &str = "SbgAuthToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "labcat",
        description = "Metadata service for laboratory data catalogues: data entries (raw \
            data registered by instruments and pipelines), their free-form metadata, physical \
            samples, and the API keys that reach them.\n\n\
            Every route but health, metrics and these docs needs a key, sent as `X-API-KEY`, \
            `Authorization: Bearer` or `X-SBG-Auth-Token`; two different keys in one request \
            are a 400 `ambiguous_credentials`. A caller reaches what its projects hold, \
            as its role there allows (narrowed to its key's projects, if limited): an \
            entry it cannot read is a 404, exactly like a missing one; one it can read \
            but not change is a 403 `insufficient_role` on writes.\n\n\
            Errors are RFC 9457 `application/problem+json` with a stable `code`, per-field \
            `errors` and the `request_id` (also in the `X-Request-Id` response header). \
            Authenticated responses carry the key's standing in the `RateLimit` and \
            `RateLimit-Policy` headers. Every GET operation also answers HEAD (same status \
            and headers, no body).",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        health::healthz,
        health::readyz,
        ui::root,
        ui::entries,
        ui::keys,
        ui::entry,
        ui::members,
        ui::asset,
        ui::sign_in,
        ui::sign_out,
        metrics::metrics,
        docs::openapi_json,
        docs::index,
        docs::file,
        api_keys::list,
        api_keys::create,
        api_keys::revoke,
        data_entries::search,
        data_entries::create,
        data_entries::bulk_update,
        data_entries::get,
        data_entries::update,
        data_entries::delete,
        data_entries::history,
        discovery::facets,
        discovery::keys,
        metadata::get,
        metadata::merge,
        metadata::replace,
        physical_samples::list,
        physical_samples::create,
        physical_samples::get,
        projects::list,
        projects::create,
        projects::get,
        projects::update,
        projects::delete,
        projects::members,
        projects::put_member,
        projects::remove_member,
        projects::physical_samples,
        metadata_schemas::get,
        metadata_schemas::versions,
        metadata_schemas::put,
        metadata_schemas::delete,
        metadata_schemas::check,
        events::list,
        webhooks::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::deliveries,
        webhooks::redeliver,
        v2_files::list,
        v2_files::get,
        v2_files::update,
        v2_files::delete,
        v2_files::metadata,
        v2_files::merge_metadata,
        v2_files::replace_metadata,
        v2_files::replace_tags,
        v2_bulk::get,
        v2_bulk::delete,
        v2_bulk::update,
        v2_bulk::edit,
        v2_projects::list,
        v2_projects::create,
        v2_projects::list_owner,
        v2_projects::get,
        v2_projects::update,
        v2_projects::delete,
        v2_projects::members,
        v2_projects::add_member,
        v2_projects::member,
        v2_projects::remove_member,
        v2_projects::patch_permissions,
        v2_projects::put_permissions,
        v2_user::me,
        v2_user::get,
        v2_user::rate_limit,
    ),
    components(schemas(schemas::EntryField, v2::SbgFileField), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        PreconditionFailed,
        RequestTimeout,
        PayloadTooLarge,
        UnsupportedMediaType,
        UnprocessableContent,
        PreconditionRequired,
        TooManyRequests,
        ServiceUnavailable,
        SbgBadRequest,
        SbgUnauthorized,
        SbgForbidden,
        SbgNotFound,
        SbgConflict,
        SbgUnsupportedMediaType,
        SbgTooManyRequests,
        SbgServiceUnavailable,
    )),
    modifiers(&SecuritySchemes, &IdempotentWrites, &AmbiguousCredentials),
    security(("ApiKey" = []), ("Bearer" = []), ("SbgAuthToken" = [])),
    tags(
        (name = "data entries", description = "Raw data registered by instruments and pipelines."),
        (name = "metadata", description = "An entry's free-form metadata document on its own."),
        (name = "discovery", description = "What the entries a caller may read hold: the \
            metadata paths in use, and how often each value of a field or path occurs."),
        (name = "physical samples", description = "Samples that entries can point at."),
        (name = "projects", description = "What a lab shares: every entry and sample belongs \
            to one project, and a member's role there (`viewer`, `editor`, `admin`) decides \
            what it may do with them."),
        (name = "schemas", description = "A project's JSON Schema for the metadata of each \
            data type, enforced (invalid writes refused) or reported (entries flagged with \
            `metadata_valid` and `metadata_errors`)."),
        (name = "events", description = "The change feed: follow changes (polled or live, \
            as Server-Sent Events) instead of polling the entries."),
        (name = "webhooks", description = "A project's subscriptions to its events, delivered \
            as signed POSTs (Standard Webhooks), with their delivery records."),
        (name = "api keys", description = "Key self-service; `admin` keys manage other users' keys."),
        (name = "service", description = "Health, metrics and this description; no key needed."),
        (name = "ui", description = "The web UI at `/ui` (HTML pages built on this API). \
            Signing in there exchanges an API key for a session cookie (`labcat_session`, \
            `HttpOnly`, `SameSite=Strict`), which every route here then accepts in place of \
            a key; writes with it must come from labcat's own pages (`X-Labcat-CSRF: 1`, and \
            `Sec-Fetch-Site: same-origin` or the server's own `Origin`), else 403 \
            `cross_site_request`."),
        (name = "v2 files", description = "The Seven Bridges-compatible surface: point \
            `sevenbridges-python` (or code written for the Seven Bridges / Cavatica API) at \
            `http://<labcat>/v2`. Files are data entries (`id` = `data_id`, `name` = \
            `raw_name`, the same metadata). Errors are Seven Bridges' \
            `{status, code, message, more_info}`, and every response carries \
            `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`."),
        (name = "v2 projects", description = "Seven Bridges projects and members: a \
            project's id is `<created_by>/<slug>`; a member's role is shown and set as \
            permissions (`admin`: admin; `write`: editor; otherwise viewer)."),
    )
)]
pub struct ApiDoc;

/// The three ways to present a key; any one of them will do.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "An API key (`lc_...`), from `labcat keys create` or `POST /api_keys`.",
            ))),
        );
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The same API key as a bearer token."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SBG_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-SBG-Auth-Token",
                "The same API key, as Seven Bridges clients send it.",
            ))),
        );
    }
}

/// `Idempotency-Key` on every write operation, as the middleware (`routes::idempotency`)
/// honours it on every write route, with the answers it can give: 400 for a malformed key,
/// 409 while the first request runs, 422 for a key reused with another request (on `/v2`,
/// Seven Bridges' 400).
struct IdempotentWrites;

impl Modify for IdempotentWrites {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = params::IdempotencyKey::into_params(|| None);
        for (path, item) in &mut openapi.paths.paths {
            let responses: &[(&str, &str)] = if path.starts_with(crate::routes::v2::PREFIX) {
                &[("400", "SbgBadRequest"), ("409", "SbgConflict")]
            } else {
                &[
                    ("400", "BadRequest"),
                    ("409", "Conflict"),
                    ("422", "UnprocessableContent"),
                ]
            };
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in writes.into_iter().flatten() {
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                let declared = parameters.iter().any(
                    |parameter| matches!(parameter, RefOr::T(p) if p.name == "Idempotency-Key"),
                );
                if !declared {
                    parameters.extend(header.iter().cloned().map(RefOr::T));
                }
                for (status, response) in responses {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*response)));
                }
            }
        }
    }
}

/// Any request that needs a key can carry two different ones (`ambiguous_credentials`), so
/// every operation that answers 401 also answers 400; added here so no operation forgets it.
struct AmbiguousCredentials;

impl Modify for AmbiguousCredentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let bad_request = if path.starts_with(crate::routes::v2::PREFIX) {
                "SbgBadRequest"
            } else {
                "BadRequest"
            };
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                if responses.contains_key("401") {
                    responses
                        .entry("400".to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(bad_request)));
                }
            }
        }
    }
}

/// The description as `/openapi.json` serves it; built once.
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the OpenAPI description serialises")
    });
    &JSON
}
