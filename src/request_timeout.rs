//! A bound on how long one request may take. A database that stops answering without
//! closing its connections (a network partition, a frozen host) would otherwise hold a
//! client until TCP gives up, minutes later; past the bound the client gets the same 503
//! with `Retry-After` as for any other outage. The database's own `statement_timeout`
//! (database.statement_timeout_ms) is set lower, so in the usual case the statement is
//! cancelled there first and no work goes on after the client was answered.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

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
    // No clone of the request may be held across `next.call`: routing needs it unshared.
    match tokio::time::timeout(bound, next.call(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = duration_ms(bound),
                "request timed out; answering 503"
            );
            // The request went with the dropped future, so no ServiceResponse can be made:
            // the 503 travels as an error carrying its finished response, built here where
            // the request id is known (`telemetry::request_context` still logs it).
            let mut response = ApiError::Unavailable.error_response();
            if let Some(value) =
                telemetry::current_request_id().and_then(|id| HeaderValue::from_str(&id).ok())
            {
                response
                    .headers_mut()
                    .insert(telemetry::REQUEST_ID_HEADER, value);
            }
            Err(InternalError::from_response(ApiError::Unavailable, response).into())
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
