//! Request bodies: a JSON object, size-capped, with every failure a clear 4xx.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request_timeout::BodyProgress;
use crate::startup::AppState;

/// The body, parsed as a JSON object. Accepts `application/json`,
/// `application/merge-patch+json` and any other `+json` type.
pub struct JsonObject(pub Map<String, Value>);

/// The body as any JSON value (bulk requests send arrays).
pub struct JsonBody(pub Value);

impl FromRequest for JsonObject {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            match read_json(&request, payload).await? {
                Value::Object(object) => Ok(JsonObject(object)),
                _ => Err(ApiError::NotAnObject),
            }
        })
    }
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move { read_json(&request, payload).await.map(JsonBody) })
    }
}

async fn read_json(request: &HttpRequest, payload: Payload) -> Result<Value, ApiError> {
    check_content_type(request)?;
    let bytes = read_limited(request, payload).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson(
            "the body is empty; expected a JSON object".into(),
        ));
    }
    serde_json::from_slice::<Value>(&bytes).map_err(|error| {
        if error.to_string().starts_with("recursion limit exceeded") {
            ApiError::MalformedJson("the body is nested too deeply (more than 128 levels)".into())
        } else {
            ApiError::MalformedJson(error.to_string())
        }
    })
}

/// Reads the whole body, refusing more than `server.max_body_bytes` (413) early.
pub async fn read_limited(request: &HttpRequest, payload: Payload) -> Result<web::Bytes, ApiError> {
    let limit = request
        .app_data::<web::Data<AppState>>()
        .map_or(1024 * 1024, |state| state.max_body_bytes);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    // While the body arrives, running out of time is the client's doing (a 408).
    let progress = request.extensions().get::<BodyProgress>().cloned();
    if let Some(progress) = &progress {
        progress.started();
    }
    let body = read_up_to(payload, limit).await;
    if let Some(progress) = &progress {
        progress.finished();
    }
    body
}

async fn read_up_to(mut payload: Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::MalformedJson(error.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

fn check_content_type(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        // Clients that send no type at all get the benefit of the doubt.
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "'{essence}'; send application/json or application/merge-patch+json"
        )))
    }
}
