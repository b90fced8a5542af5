//! `Idempotency-Key` on POST and PATCH: a retry with the same key and body gets the first
//! response replayed (same status, same body) without a second write; the same key with a
//! different request is a 422; a retry while the first is still running is a 409.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::body::read_limited;
use crate::auth::Principal;
use crate::db;
use crate::error::ApiError;
use crate::startup::AppState;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotency-replayed");
/// Response headers worth replaying along with the body.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

pub async fn middleware(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Only where a route takes the method: elsewhere the answer is a 404 or 405, which a
    // stored key must not turn into something else.
    let applies = matches!(*request.method(), Method::POST | Method::PATCH)
        && request
            .match_pattern()
            .is_some_and(|pattern| super::serves(request.method(), &pattern));
    let key = request
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .map(|value| value.to_str().map(str::to_owned));
    let key = match (applies, key) {
        (true, Some(Ok(key))) if (1..=255).contains(&key.len()) => key,
        (true, Some(_)) => {
            let error =
                ApiError::BadHeader("Idempotency-Key must be 1-255 visible characters".into());
            return Ok(request.error_response(error));
        }
        _ => return Ok(next.call(request).await?.map_into_boxed_body()),
    };
    let principal = match request.extract::<Principal>().await {
        Ok(principal) => principal,
        Err(error) => return Ok(request.error_response(error)),
    };
    let state = request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered at startup")
        .clone();
    let (http_request, payload) = request.parts_mut();
    let body = match read_limited(http_request, payload.take()).await {
        Ok(body) => body,
        Err(error) => return Ok(request.error_response(error)),
    };
    let fingerprint = fingerprint(&request, &body);
    request.set_payload(body.into());

    let claimed = db::idempotency::claim(
        &state.pool,
        &principal.user_id,
        &key,
        &fingerprint,
        state.idempotency_ttl,
    )
    .await;
    match claimed {
        Err(error) => Ok(request.error_response(ApiError::from(error))),
        Ok(Some(stored)) if stored.fingerprint != fingerprint => {
            Ok(request.error_response(ApiError::IdempotencyKeyReused))
        }
        Ok(Some(stored)) => match stored.status {
            None => Ok(request.error_response(ApiError::IdempotencyInProgress)),
            Some(status) => Ok(replay(request, status, stored.headers, stored.body)),
        },
        Ok(None) => {
            let response = next.call(request).await?;
            remember(&state, &principal, &key, response).await
        }
    }
}

/// Stores the first response (unless it is a server error: then the key is released so
/// a retry runs again) and passes it on.
async fn remember(
    state: &AppState,
    principal: &Principal,
    key: &str,
    response: ServiceResponse<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (request, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body())
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("unreadable response body")))?;
    let outcome = if status.is_server_error() {
        db::idempotency::release(&state.pool, &principal.user_id, key).await
    } else {
        let kept: Map<String, Value> = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(name)?.to_str().ok()?;
                Some((name.to_string(), Value::from(value)))
            })
            .collect();
        db::idempotency::complete(
            &state.pool,
            &principal.user_id,
            key,
            status.as_u16(),
            &Value::Object(kept),
            &body,
        )
        .await
    };
    if let Err(error) = outcome {
        tracing::warn!(%error, "could not record the idempotent response");
    }
    let mut rebuilt = HttpResponse::build(status);
    for (name, value) in &headers {
        rebuilt.append_header((name.clone(), value.clone()));
    }
    Ok(ServiceResponse::new(request, rebuilt.body(body)))
}

fn replay(
    request: ServiceRequest,
    status: i16,
    headers: Option<Value>,
    body: Option<Vec<u8>>,
) -> ServiceResponse<BoxBody> {
    let status = u16::try_from(status)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(Value::Object(headers)) = headers {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response.insert_header((name, value));
            }
        }
    }
    response.insert_header((REPLAYED, HeaderValue::from_static("true")));
    request.into_response(response.body(body.unwrap_or_default()))
}

/// Identifies "the same request": method, path, query and body.
fn fingerprint(request: &ServiceRequest, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [
        request.method().as_str().as_bytes(),
        request.path().as_bytes(),
        request.query_string().as_bytes(),
        body,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}
