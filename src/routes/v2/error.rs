//! `ApiError` in the Seven Bridges shape, `{"status", "code", "message", "more_info"}`, with
//! the HTTP statuses sevenbridges-python turns into its exception classes (400 `BadRequest`,
//! 401 `Unauthorized`, 404 `NotFound`, 409 `Conflict`, …) and Seven Bridges' numeric codes.
//! Code 0 on a 503 means "under maintenance" to that client (it sleeps 300 s and retries),
//! so no error here ever carries code 0.

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::telemetry;

/// The status and body of `error` on the `/v2` surface: for whole responses and for the
/// per-item `error` of bulk results alike.
pub fn sbg_error(error: &ApiError) -> (StatusCode, Value) {
    let (status, code) = status_and_code(error);
    let message = match error {
        ApiError::NotFound { what, id } => match *what {
            "data entry" | "file" => format!("Requested file {id} does not exist."),
            _ => format!("Requested {what} {id} does not exist."),
        },
        ApiError::Invalid(errors) | ApiError::BadQuery(errors) | ApiError::BadRequest(errors)
            if !errors.is_empty() =>
        {
            // A schema violation names where in the metadata it is (`metadata/t: ...`).
            errors
                .iter()
                .map(|e| match &e.violation {
                    Some(_) => format!("{}: {}", e.field, e.message),
                    None => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        // Never leak internals; the cause is in the log under the request id.
        ApiError::Internal(_) => "An unexpected error occurred.".to_owned(),
        other => other.to_string(),
    };
    let more_info = match telemetry::current_request_id() {
        Some(id) => format!("labcat error '{}', request id {id}", error.code()),
        None => format!("labcat error '{}'", error.code()),
    };
    let body = json!({
        "status": status.as_u16(),
        "code": code,
        "message": message,
        "more_info": more_info,
    });
    (status, body)
}

fn status_and_code(error: &ApiError) -> (StatusCode, u32) {
    match error {
        ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, 90001),
        ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, 90002),
        // Seven Bridges: "insufficient privileges for the project".
        ApiError::RoleTooLow(_) => (StatusCode::FORBIDDEN, 3001),
        ApiError::NotFound { what, .. } => {
            let code = match *what {
                "data entry" | "file" => 5002,
                "project" | "member" => 3002,
                "user" => 2002,
                _ => 90003,
            };
            (StatusCode::NOT_FOUND, code)
        }
        ApiError::Invalid(errors) | ApiError::BadQuery(errors) | ApiError::BadRequest(errors) => {
            let on = |field: &str| errors.iter().any(|e| e.field.starts_with(field));
            let code = if errors.iter().any(|e| e.code == "empty_project_name") {
                3007 // a project needs a name
            } else if on("metadata") {
                5006 // metadata validation failed
            } else if on("name") || on("raw_name") {
                5024 // invalid name
            } else {
                90000
            };
            (StatusCode::BAD_REQUEST, code)
        }
        ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, 90009),
        ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 90008),
        ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, 1000),
        ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, 90005),
        other => by_status(other.status_code()),
    }
}

/// The rest by their native status: statuses the client has no class for become the
/// nearest one it has.
pub fn by_status(status: StatusCode) -> (StatusCode, u32) {
    match status.as_u16() {
        401 => (StatusCode::UNAUTHORIZED, 90001),
        403 => (StatusCode::FORBIDDEN, 90002),
        404 => (StatusCode::NOT_FOUND, 90003),
        405 => (StatusCode::METHOD_NOT_ALLOWED, 90006),
        408 => (StatusCode::REQUEST_TIMEOUT, 90000),
        // A stale If-Match or a clash with another request: the state conflicts.
        409 | 412 => (StatusCode::CONFLICT, 90007),
        415 => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 90008),
        429 => (StatusCode::TOO_MANY_REQUESTS, 1000),
        503 => (StatusCode::SERVICE_UNAVAILABLE, 90005),
        400..=499 => (StatusCode::BAD_REQUEST, 90000),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, 90004),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldError, Scope};

    #[test]
    fn no_error_has_code_0_and_every_status_is_one_the_client_has_a_class_for() {
        let errors = [
            ApiError::Unauthorized,
            ApiError::Forbidden(Scope::Write),
            ApiError::NotFound {
                what: "data entry",
                id: "x".into(),
            },
            ApiError::NoRoute,
            ApiError::MethodNotAllowed,
            ApiError::Invalid(vec![FieldError::required("name")]),
            ApiError::BadQuery(vec![]),
            ApiError::BadRequest(vec![FieldError::new("items", "duplicate_item", "twice")]),
            ApiError::TooManyKeys { limit: 1 },
            ApiError::BadPath("x".into()),
            ApiError::MalformedJson("x".into()),
            ApiError::NotAnObject,
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::PreconditionFailed {
                current_etag: "\"1\"".into(),
            },
            ApiError::PreconditionRequired,
            ApiError::BadHeader("x".into()),
            ApiError::Unavailable,
            ApiError::DatabaseTimedOut,
            ApiError::AmbiguousCredentials,
            ApiError::Internal(anyhow::anyhow!("boom")),
        ];
        for error in &errors {
            let (status, body) = sbg_error(error);
            assert_ne!(body["code"], 0, "{error:?}");
            assert_eq!(body["status"], status.as_u16());
            assert!(
                [400, 401, 403, 404, 405, 409, 429, 500, 503].contains(&status.as_u16()),
                "{error:?} -> {status}"
            );
        }
        let (status, body) = sbg_error(&ApiError::Unavailable);
        assert_eq!((status.as_u16(), &body["code"]), (503, &json!(90005)));
        let (status, body) = sbg_error(&ApiError::DatabaseTimedOut);
        assert_eq!((status.as_u16(), &body["code"]), (503, &json!(90005)));
        let (_, body) = sbg_error(&ApiError::Internal(anyhow::anyhow!("secret detail")));
        assert!(!body.to_string().contains("secret detail"));
    }
}
