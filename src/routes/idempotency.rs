//! `Idempotency-Key` on every write (POST, PUT, PATCH, DELETE; native and `/v2`): a retry
//! with the same key and request gets the first response replayed (same status, same body,
//! `Idempotency-Replayed: true`) without a second write; the same key with a different
//! request is a 422 (on `/v2`, Seven Bridges' 400); a retry while the first is still
//! running is a 409. Keys belong to the API key that sent them: another key, even the same
//! user's, never sees the answer.
//!
//! This layer sits inside CORS and the request time limit (see `startup`), so its answers
//! carry CORS headers and its statements are bounded like any other.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::body::read_limited;
use crate::auth::Principal;
use crate::db;
use crate::db::idempotency::{ClaimRef, Claimed, StoredRequest};
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
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let surface = request
        .match_pattern()
        .filter(|_| writes)
        .and_then(|pattern| super::surface_serving(request.method(), &pattern));
    let sent_key = request
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .map(|value| value.to_str().map(str::to_owned));
    let (surface, key) = match (surface, sent_key) {
        (Some(surface), Some(Ok(key))) if (1..=255).contains(&key.len()) => (surface, key),
        (Some(surface), Some(_)) => {
            let error =
                ApiError::BadHeader("Idempotency-Key must be 1-255 visible characters".into());
            return Ok(surface.finish(request.error_response(error)));
        }
        _ => return Ok(next.call(request).await?.map_into_boxed_body()),
    };
    // A minted key's answer carries its secret, and labcat stores only secrets' hashes: a
    // stored answer would be a plaintext copy for the TTL.
    if request.method() == Method::POST && request.match_pattern().as_deref() == Some("/api_keys") {
        let error = ApiError::BadHeader(
            "Idempotency-Key is not accepted on POST /api_keys: its answer carries a secret, \
             which labcat never stores"
                .into(),
        );
        return Ok(surface.finish(request.error_response(error)));
    }
    // Signing in and out set and clear a cookie, which is no answer to replay.
    if matches!(
        request.match_pattern().as_deref(),
        Some("/ui/sign_in" | "/ui/sign_out")
    ) {
        let error = ApiError::BadHeader(
            "Idempotency-Key is not accepted on signing in or out of the web UI".into(),
        );
        return Ok(surface.finish(request.error_response(error)));
    }
    let principal = match request.extract::<Principal>().await {
        Ok(principal) => principal,
        Err(error) => return Ok(surface.finish(request.error_response(error))),
    };
    let state = request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered at startup")
        .clone();
    let (http_request, payload) = request.parts_mut();
    let body = match read_limited(http_request, payload.take()).await {
        Ok(body) => body,
        Err(error) => return Ok(surface.finish(request.error_response(error))),
    };
    let fingerprint = fingerprint(&request, &body);
    request.set_payload(body.into());

    let claim = ClaimRef {
        key_id: principal.key_id,
        idempotency_key: &key,
        claim_id: Uuid::new_v4(),
    };
    // No request outlives the time limit, so a claim left by one that never finished
    // (a crash) frees its key after that long; without a limit, after the TTL.
    let lease = state.request_timeout.unwrap_or(state.idempotency_ttl);
    match db::idempotency::claim(&state.pool, &claim, &fingerprint, lease).await {
        Err(error) => Ok(surface.finish(request.error_response(ApiError::from(error)))),
        Ok(Claimed::Earlier(stored)) if stored.fingerprint != fingerprint => {
            Ok(surface.finish(request.error_response(ApiError::IdempotencyKeyReused)))
        }
        Ok(Claimed::Earlier(StoredRequest { status: None, .. })) => {
            Ok(surface.finish(request.error_response(ApiError::IdempotencyInProgress)))
        }
        Ok(Claimed::Earlier(stored)) => Ok(surface.finish(replay(request, stored))),
        Ok(Claimed::Yes) => {
            // Gives the key back if the request goes away unanswered (the time limit,
            // a client that disconnected) or fails before an answer is stored.
            let held = HeldClaim::new(&state.pool, &claim);
            let response = next.call(request).await?;
            remember(&state, held, response).await
        }
    }
}

/// A claim this request holds. Dropped before `settled`, it releases the key in the
/// background (a drop cannot wait for the database).
struct HeldClaim {
    pool: PgPool,
    key_id: Uuid,
    idempotency_key: String,
    claim_id: Uuid,
    settled: bool,
}

impl HeldClaim {
    fn new(pool: &PgPool, claim: &ClaimRef<'_>) -> Self {
        Self {
            pool: pool.clone(),
            key_id: claim.key_id,
            idempotency_key: claim.idempotency_key.to_owned(),
            claim_id: claim.claim_id,
            settled: false,
        }
    }

    fn claim(&self) -> ClaimRef<'_> {
        ClaimRef {
            key_id: self.key_id,
            idempotency_key: &self.idempotency_key,
            claim_id: self.claim_id,
        }
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // shutting down: the lease frees the key
        };
        let pool = self.pool.clone();
        let (key_id, idempotency_key, claim_id) = (
            self.key_id,
            std::mem::take(&mut self.idempotency_key),
            self.claim_id,
        );
        runtime.spawn(async move {
            let claim = ClaimRef {
                key_id,
                idempotency_key: &idempotency_key,
                claim_id,
            };
            if let Err(error) = db::idempotency::release(&pool, &claim).await {
                tracing::warn!(%error, "could not release an unanswered idempotency key");
            }
        });
    }
}

/// Stores the first response (unless it is a server error: then the key is released so
/// a retry runs again) and passes it on.
async fn remember(
    state: &AppState,
    mut held: HeldClaim,
    response: ServiceResponse<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (request, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body())
        .await
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("unreadable response body")))?;
    let outcome = if status.is_server_error() {
        db::idempotency::release(&state.pool, &held.claim()).await
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
            &held.claim(),
            status.as_u16(),
            &Value::Object(kept),
            &body,
            state.idempotency_ttl,
        )
        .await
    };
    match outcome {
        Ok(()) => held.settled = true,
        // Dropping `held` unsettled releases the key: better a retry that runs again than
        // one refused as "in progress" until the lease runs out.
        Err(error) => tracing::warn!(%error, "could not record the idempotent response"),
    }
    drop(held);
    let mut rebuilt = HttpResponse::build(status);
    for (name, value) in &headers {
        rebuilt.append_header((name.clone(), value.clone()));
    }
    Ok(ServiceResponse::new(request, rebuilt.body(body)))
}

fn replay(request: ServiceRequest, stored: StoredRequest) -> ServiceResponse<BoxBody> {
    let status = stored
        .status
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(Value::Object(headers)) = stored.headers {
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
    request.into_response(response.body(stored.body.unwrap_or_default()))
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
