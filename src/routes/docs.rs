//! `/openapi.json` and the Swagger UI at `/docs`. The UI's files are compiled into the
//! binary (utoipa-swagger-ui's `vendored` feature), so the page works with no network.
//! They are served by hand rather than with `SwaggerUi`'s own service so that the docs
//! routes live in the route table like every other route (405s, problem+json 404s) and
//! `/docs` works behind the trailing-slash normalisation.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::openapi;

const INDEX: &str = "/docs/index.html";

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "get_openapi",
    tag = "service",
    summary = "This OpenAPI 3.1 description",
    security(()),
    responses(
        (status = 200, description = "The description.", body = Object, content_type = "application/json"),
    )
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(openapi::json())
}

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "get_docs",
    tag = "service",
    summary = "The API docs page (Swagger UI)",
    description = "Redirects to the page, whose relative links need the `/docs/` prefix.",
    security(()),
    responses(
        (status = 302, description = "To `/docs/index.html`.", headers(("Location" = String))),
    )
)]
pub async fn index() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, INDEX))
        .finish()
}

#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "get_docs_file",
    tag = "service",
    summary = "A file of the docs page",
    security(()),
    params(("file" = String, Path, description = "e.g. `index.html`, `swagger-ui-bundle.js`.")),
    responses(
        (status = 200, description = "The file.", content(
            ("text/html"), ("text/css"), ("text/javascript"), ("application/javascript"), ("image/png")
        )),
        (status = 404, response = crate::openapi::responses::NotFound),
    )
)]
pub async fn file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
        Arc::new(
            Config::new(["/openapi.json"])
                // The default asks validator.swagger.io about the document: no calls out.
                .validator_url("none")
                .display_operation_id(true),
        )
    });
    let name = path.into_inner();
    let file = utoipa_swagger_ui::serve(&name, CONFIG.clone())
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("docs file {name}: {error}")))?
        .ok_or_else(|| ApiError::NotFound {
            what: "docs file",
            id: name.clone(),
        })?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .body(file.bytes.into_owned()))
}
