use actix_web::{HttpResponse, web};

use crate::metrics::CONTENT_TYPE;
use crate::startup::AppState;

/// `GET /metrics`: Prometheus text format, no key needed (as for the health routes).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(&state.pool))
}
