use actix_web::{HttpResponse, web};

use crate::metrics::CONTENT_TYPE;
use crate::startup::AppState;

/// `GET /metrics`: Prometheus text format, no key needed (as for the health routes).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "service",
    summary = "Prometheus metrics",
    description = "Request counts and latencies by route and status, database pool use, \
        authentication failures and rate-limited requests, in the Prometheus text format.",
    security(()),
    responses((status = 200, description = "The metrics.", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(&state.pool))
}
