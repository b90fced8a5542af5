//! `/projects/{project_id}/webhooks`: a project's webhooks and their deliveries (admins).
//!
//! A project the caller cannot read is a 404, exactly like a missing one; a member below
//! admin gets a 403. Reading needs the `read` scope, changing `write`.

use actix_web::{HttpResponse, web};

use super::body::JsonObject;
use super::response::parse_id;
use crate::auth::Principal;
use crate::domain::Scope;
use crate::error::ApiError;
use crate::openapi::responses::*;
use crate::openapi::schemas::{Webhook, WebhookChange, WebhookCreate, WebhookDelivery};
use crate::startup::AppState;

#[utoipa::path(
    post,
    path = "/projects/{project_id}/webhooks",
    operation_id = "create_webhook",
    tag = "webhooks",
    summary = "Subscribe a URL to the project's events (admins)",
    description = "Each event of the listed types is POSTed to `url` as JSON (the event as \
        `GET /events` tells it), signed as Standard Webhooks specifies (`webhook-id`, \
        `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), at least once, in \
        order per entry, retried with a doubling delay from `webhooks.retry_initial_seconds` \
        for `webhooks.retry_for_hours`. The answer holds the signing `secret`, shown this \
        once. Events placed after the webhook was created are sent.",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    request_body = WebhookCreate,
    responses(
        (status = 201, description = "Created; `secret` is shown only now.", body = Webhook),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn create(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let project = parse_id(&path)?;
    let view = state
        .webhooks()
        .await?
        .create(&principal, project, body)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/webhooks",
    operation_id = "list_webhooks",
    tag = "webhooks",
    summary = "The project's webhooks (admins)",
    params(("project_id" = uuid::Uuid, Path, description = "The project's id.")),
    responses(
        (status = 200, description = "Oldest first.", body = Vec<Webhook>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let project = parse_id(&path)?;
    let views = state.webhooks().await?.list(&principal, project).await?;
    Ok(HttpResponse::Ok().json(views))
}

fn ids(path: &(String, String)) -> Result<(uuid::Uuid, uuid::Uuid), ApiError> {
    Ok((parse_id(&path.0)?, parse_id(&path.1)?))
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/webhooks/{webhook_id}",
    operation_id = "get_webhook",
    tag = "webhooks",
    summary = "One webhook (admins)",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook's id."),
    ),
    responses(
        (status = 200, description = "The webhook.", body = Webhook),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn get(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (project, webhook) = ids(&path)?;
    let view = state
        .webhooks()
        .await?
        .get(&principal, project, webhook)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    patch,
    path = "/projects/{project_id}/webhooks/{webhook_id}",
    operation_id = "update_webhook",
    tag = "webhooks",
    summary = "Change a webhook's URL or events, turn it on or off, rotate its secret (admins)",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook's id."),
    ),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "The webhook as it now is (`secret` after a rotation).",
            body = Webhook),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = UnprocessableContent),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn update(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, webhook) = ids(&path)?;
    let view = state
        .webhooks()
        .await?
        .update(&principal, project, webhook, body)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(
    delete,
    path = "/projects/{project_id}/webhooks/{webhook_id}",
    operation_id = "delete_webhook",
    tag = "webhooks",
    summary = "Remove a webhook and its delivery records (admins)",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook's id."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn delete(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, webhook) = ids(&path)?;
    state
        .webhooks()
        .await?
        .delete(&principal, project, webhook)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/projects/{project_id}/webhooks/{webhook_id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    summary = "A webhook's latest deliveries: status, attempts, last response, next attempt",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook's id."),
    ),
    responses(
        (status = 200, description = "The newest 100, newest first.",
            body = Vec<WebhookDelivery>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn deliveries(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Read)?;
    let (project, webhook) = ids(&path)?;
    let views = state
        .webhooks()
        .await?
        .deliveries(&principal, project, webhook)
        .await?;
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(
    post,
    path = "/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    operation_id = "redeliver_webhook_delivery",
    tag = "webhooks",
    summary = "Send a delivery again, as a new series of attempts (admins)",
    params(
        ("project_id" = uuid::Uuid, Path, description = "The project's id."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook's id."),
        ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 202, description = "Due again now."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub async fn redeliver(
    principal: Principal,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::Write)?;
    let (project, webhook) = ids(&(path.0.clone(), path.1.clone()))?;
    let delivery = parse_id(&path.2)?;
    state
        .webhooks()
        .await?
        .redeliver(&principal, project, webhook, delivery)
        .await?;
    Ok(HttpResponse::Accepted().finish())
}
