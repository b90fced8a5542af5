//! `GET /metadata/keys` and `GET /data_entries/facets`: what the entries a caller may read
//! hold. Both count only those entries (`db::discovery` selects them with search's own
//! filters and access predicate).

use actix_web::{HttpRequest, HttpResponse, web};

use super::response::{query_pairs, search_query_error};
use crate::auth::Principal;
use crate::db;
use crate::domain::Scope;
use crate::domain::discovery::{FacetsQuery, KeysQuery};
use crate::error::ApiError;
use crate::openapi::params::{FacetParams, KeysParams, SearchFilters};
use crate::openapi::responses::*;
use crate::openapi::schemas::{FacetCounts, MetadataKey, Problem};
use crate::startup::AppState;

/// `GET /metadata/keys`: a JSON array of paths with their counts, most frequent first.
#[utoipa::path(
    get,
    path = "/metadata/keys",
    operation_id = "list_metadata_keys",
    tag = "discovery",
    summary = "Metadata paths in use",
    description = "Every metadata path that the entries the caller may read hold a value \
        at (and none that only other callers' entries hold), as filters write it: keys \
        joined by `.`, with `.`, `[`, `]` and `\\` inside a key escaped by a backslash. A \
        path leads to a leaf: a scalar, a quantity (`{\"value\": <number>, \"unit\": \
        <string>}`, listed once, not its members), or an empty object or array; a \
        non-empty array's elements are at the array's own path. `count` is how many \
        entries hold a value there; `types` and `units` count entries too (an entry with \
        an array of three numbers at a path counts once for `number`). Most frequent \
        first, then by path; at most 1000 paths.",
    params(KeysParams),
    responses(
        (status = 200, description = "The paths, most frequent first.", body = Vec<MetadataKey>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "A parameter is unknown or has an invalid value \
            (a `project_id` that is not a UUID, an unknown `char_source_type`), as on \
            search; `errors` names each one.", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn keys(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let query = KeysQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(search_query_error)?;
    let keys = db::discovery::metadata_keys(
        &state.pool,
        principal.access(),
        &query,
        &state.indexed_paths,
    )
    .await?;
    Ok(HttpResponse::Ok().json(keys))
}

/// `GET /data_entries/facets?facet=…`: the most frequent values of each facet over the
/// entries a search with the same filters finds.
#[utoipa::path(
    get,
    path = "/data_entries/facets",
    operation_id = "facet_data_entries",
    tag = "discovery",
    summary = "Count the values of fields or metadata paths",
    description = "For each `facet`, the 50 most frequent values (ties by value) over the \
        entries the caller may read that every other parameter selects: the filters of \
        `GET /data_entries` (`metadata.<path>[<op>]`, `q`, `data_type`, `status`, ids, \
        dates, …), but not its `limit`, `cursor`, `order_by` or `fields` (a 422, as an \
        unknown parameter). A count is of entries: one whose value at a metadata path is \
        an array counts once for each distinct element; one without a value there (or, \
        for `physical_sample_id`, without a sample) is not counted. A missing, unknown \
        or malformed facet, or more than 10, is a 400 naming `facet`.",
    params(FacetParams, SearchFilters),
    responses(
        (status = 200, description = "Each facet's values, in request order.", body = FacetCounts),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "A search parameter is unknown or has an invalid value, \
            as on search; `errors` names each one.", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn facets(
    principal: Principal,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let pairs = query_pairs(&request);
    let cursor_key = state.cursor_key().await?;
    let query = FacetsQuery::parse(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        cursor_key,
    )
    // A bad facet is a 400 like a bad metadata filter; the filters fail as on search.
    .map_err(|errors| {
        if errors.iter().any(|error| error.field == "facet") {
            ApiError::BadQuery(errors)
        } else {
            search_query_error(errors)
        }
    })?;
    let counts = db::discovery::facets(
        &state.pool,
        principal.access(),
        &query,
        &state.indexed_paths,
    )
    .await?;
    Ok(HttpResponse::Ok().json(counts))
}
