//! A bound on how long one request may take. A database that stops answering without
//! closing its connections (a network partition, a frozen host) would otherwise hold a
//! client until TCP gives up, minutes later; past the bound the client gets the same 503
//! with `Retry-After` as for any other outage. The database's own `statement_timeout`
//! (database.statement_timeout_ms) is set lower, so in the usual case the statement is
//! cancelled there first and no work goes on after the client was answered.
//!
//! A request whose time runs out while its body is still arriving is waiting for its
//! client, not for the database: that is a 408 `request_timeout`, not the 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::error::ApiError;
use crate::startup::AppState;
use crate::telemetry;

pub async fn limit(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let bound = request
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.request_timeout);
    let Some(bound) = bound else {
        return next.call(request).await;
    };
    let body = BodyProgress::default();
    request.extensions_mut().insert(body.clone());
    // No clone of the request may be held across `next.call`: routing needs it unshared.
    match tokio::time::timeout(bound, next.call(request)).await {
        Ok(response) => response,
        Err(_) => {
            let error = if body.is_arriving() {
                ApiError::RequestTimeout {
                    limit_ms: duration_ms(bound),
                }
            } else {
                ApiError::Unavailable
            };
            tracing::warn!(
                timeout_ms = duration_ms(bound),
                status = error.status_code().as_u16(),
                "request timed out"
            );
            // The request went with the dropped future, so no ServiceResponse can be made:
            // the error travels carrying its finished response, built here where the
            // request id is known (`telemetry::request_context` still logs it).
            let mut response = error.error_response();
            if let Some(value) =
                telemetry::current_request_id().and_then(|id| HeaderValue::from_str(&id).ok())
            {
                response
                    .headers_mut()
                    .insert(telemetry::REQUEST_ID_HEADER, value);
            }
            Err(InternalError::from_response(error, response).into())
        }
    }
}

/// Whether the request's body is being read right now (`routes::body::read_limited` says
/// so), for telling a slow client from a slow database when time runs out. Not a drop
/// guard: when time runs out the read is dropped mid-way, and it must still say so.
#[derive(Clone, Default)]
pub struct BodyProgress(Arc<AtomicBool>);

impl BodyProgress {
    pub fn started(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn finished(&self) {
        self.0.store(false, Ordering::Relaxed);
    }

    fn is_arriving(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
