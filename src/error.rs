//! The one place where errors become HTTP responses: RFC 9457 problem+json with a stable
//! machine `code`. Handlers return `ApiError`; nothing else builds an error response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

use crate::db::DbError;
use crate::domain::{FieldError, Role, Scope};
use crate::rate_limit::RateLimitStatus;
use crate::telemetry;

/// Seconds a client should wait before retrying when the database is unreachable or slow.
const RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing, unknown, revoked or expired API key")]
    Unauthorized,
    #[error("this key lacks the '{0}' scope")]
    Forbidden(Scope),
    /// The caller can see the project but its role there does not allow this.
    #[error("this needs the '{0}' role in the project")]
    RoleTooLow(Role),
    /// A key limited to some projects cannot make new ones (it could not reach them).
    #[error("this key is limited to some projects and cannot create projects")]
    KeyLimitedToProjects,
    /// Entries and samples created without a project go to the personal project.
    #[error("a personal project cannot be deleted")]
    PersonalProject,
    #[error(
        "the project still holds {entries} entries and {samples} samples; delete them first or pass force=true"
    )]
    ProjectNotEmpty { entries: i64, samples: i64 },
    /// A project must keep an admin: the last one cannot leave or be demoted.
    #[error("a project needs at least one admin; make someone else admin first")]
    LastAdmin,
    #[error("no {what} with id '{id}'")]
    NotFound { what: &'static str, id: String },
    /// A feed cursor older than what the feed keeps (`events.retention_days`): events after
    /// it are gone, so following it would be a silent gap.
    #[error("events after this cursor were pruned; the oldest cursor kept is {oldest}")]
    CursorExpired { oldest: i64 },
    #[error("no route for this path")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request is well-formed JSON but its values break the rules.
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    /// A query parameter is wrong (400: the request line itself is bad).
    #[error("invalid query parameter")]
    BadQuery(Vec<FieldError>),
    /// The body asks for more than one request may: too many items, or one item twice (400).
    #[error("the request asks for more than one request may")]
    BadRequest(Vec<FieldError>),
    #[error("invalid path parameter: {0}")]
    BadPath(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("unsupported content type: {0}")]
    UnsupportedMediaType(String),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("a physical sample named like this already exists")]
    DuplicateSample { existing_id: uuid::Uuid },
    #[error("the entry has changed since the ETag in If-Match; its current ETag is {current_etag}")]
    PreconditionFailed { current_etag: String },
    #[error("this server requires If-Match on writes; GET the entry and send its ETag")]
    PreconditionRequired,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyInProgress,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("this user already has {limit} active API keys, the most allowed; revoke one first")]
    TooManyKeys { limit: u32 },
    #[error("invalid header: {0}")]
    BadHeader(String),
    #[error("the database is unavailable")]
    Unavailable,
    /// The database cancelled a statement that ran (or waited for a lock) longer than
    /// `database.statement_timeout_ms`: the same 503 as an outage, for the same retry.
    #[error("the database did not answer in time")]
    DatabaseTimedOut,
    /// The client had not sent the whole body when the request's time ran out: the client
    /// is slow, not the database.
    #[error("the request body did not arrive within the request time limit ({limit_ms} ms)")]
    RequestTimeout { limit_ms: u64 },
    /// Two different keys in one request (two `X-API-KEY` headers, or `X-API-KEY` and
    /// `Authorization: Bearer`, …): which one the caller meant cannot be known.
    #[error("the request carries more than one API key; send exactly one")]
    AmbiguousCredentials,
    /// A write authenticated by the UI's session cookie that does not come from labcat's
    /// own pages (no `X-Labcat-CSRF: 1`, or another origin).
    #[error(
        "a write with the session cookie must come from labcat's own pages (same origin, with X-Labcat-CSRF: 1)"
    )]
    CrossSiteRequest,
    #[error("{}", .0.refusal())]
    RateLimited(RateLimitStatus),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) => ApiError::Unavailable,
            DbError::TimedOut(_) => ApiError::DatabaseTimedOut,
            DbError::MetadataLimit { code, message } => {
                ApiError::Invalid(vec![FieldError::new("metadata", code, message)])
            }
            DbError::Other(error) => ApiError::Internal(error.into()),
        }
    }
}

/// Handlers take connections and transactions straight from the pool; their errors are
/// sorted the same way as any other database error.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        DbError::from(error).into()
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError::Invalid(errors)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Invalid(vec![error])
    }
}

/// RFC 9457 problem details, plus `code`, `errors` and `request_id`.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    detail: Value,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::RoleTooLow(_) => "insufficient_role",
            ApiError::LastAdmin => "last_admin",
            ApiError::KeyLimitedToProjects => "key_limited_to_projects",
            ApiError::PersonalProject => "personal_project",
            ApiError::ProjectNotEmpty { .. } => "project_not_empty",
            ApiError::NotFound { .. } | ApiError::NoRoute => "not_found",
            ApiError::CursorExpired { .. } => "cursor_expired",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Invalid(errors)
            | ApiError::BadQuery(errors)
            | ApiError::BadRequest(errors) => errors.first().map_or("invalid_request", |e| e.code),
            ApiError::BadPath(_) => "invalid_id",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::NotAnObject => "invalid_body",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::DuplicateSample { .. } => "duplicate_name",
            ApiError::PreconditionFailed { .. } => "precondition_failed",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::IdempotencyInProgress => "idempotency_in_progress",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::TooManyKeys { .. } => "too_many_api_keys",
            ApiError::BadHeader(_) => "invalid_header",
            ApiError::Unavailable | ApiError::DatabaseTimedOut => "service_unavailable",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::AmbiguousCredentials => "ambiguous_credentials",
            ApiError::CrossSiteRequest => "cross_site_request",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self.status_code() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::REQUEST_TIMEOUT => "Request timeout",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::GONE => "Gone",
            StatusCode::PRECONDITION_FAILED => "Precondition failed",
            StatusCode::PRECONDITION_REQUIRED => "Precondition required",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
            StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable content",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            _ => "Internal server error",
        }
    }

    fn detail(&self) -> Value {
        match self {
            // The Atomscale SDK reads `detail.physical_sample_id` from this 409.
            ApiError::DuplicateSample { existing_id } => serde_json::json!({
                "message": self.to_string(),
                "physical_sample_id": existing_id,
            }),
            ApiError::Invalid(errors)
            | ApiError::BadQuery(errors)
            | ApiError::BadRequest(errors)
                if errors.len() == 1 =>
            {
                errors[0].message.clone().into()
            }
            // Never leak internals; the cause is in the log under the request id.
            ApiError::Internal(_) => "an unexpected error occurred".into(),
            other => other.to_string().into(),
        }
    }
}

impl ApiError {
    /// The problem document, for responses and for per-item results of bulk requests.
    pub fn problem(&self) -> Value {
        let code = self.code();
        let errors = match self {
            ApiError::Invalid(errors)
            | ApiError::BadQuery(errors)
            | ApiError::BadRequest(errors) => errors.as_slice(),
            _ => &[],
        };
        let problem = Problem {
            type_: format!("urn:labcat:problem:{code}"),
            title: self.title(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            code,
            errors,
            request_id: telemetry::current_request_id(),
        };
        serde_json::to_value(problem).unwrap_or_default()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::RoleTooLow(_)
            | ApiError::KeyLimitedToProjects
            | ApiError::CrossSiteRequest => StatusCode::FORBIDDEN,
            ApiError::LastAdmin | ApiError::PersonalProject | ApiError::ProjectNotEmpty { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::NotFound { .. } | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::CursorExpired { .. } => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadQuery(_)
            | ApiError::BadRequest(_)
            | ApiError::BadPath(_)
            | ApiError::MalformedJson(_)
            | ApiError::BadHeader(_)
            | ApiError::AmbiguousCredentials => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::NotAnObject | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::IdempotencyInProgress | ApiError::TooManyKeys { .. } => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DuplicateSample { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable | ApiError::DatabaseTimedOut => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(error) = self {
            tracing::error!(error = ?error, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        match self {
            ApiError::Unauthorized => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"labcat\""),
                ));
            }
            ApiError::Unavailable | ApiError::DatabaseTimedOut => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS));
            }
            // The rest of the body may still be on its way: this connection cannot carry
            // another request.
            ApiError::RequestTimeout { .. } => {
                response.force_close();
            }
            ApiError::RateLimited(status) => {
                for (name, value) in status.headers() {
                    response.insert_header((name, value));
                }
            }
            ApiError::PreconditionFailed { current_etag } => {
                response.insert_header((header::ETAG, current_etag.as_str()));
            }
            _ => {}
        }
        response.body(self.problem().to_string())
    }
}
