//! The problem+json error responses, one reusable component per status, so each operation
//! lists the statuses it can produce by name and they all describe the same body.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{ToResponse, ToSchema};

use super::schemas::Problem;

pub const PROBLEM_JSON: &str = "application/problem+json";

fn header(schema_type: Type, description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::Type(schema_type)),
        ))
        .description(Some(description))
        .build()
}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(
            utoipa::openapi::Ref::from_schema_name(Problem::name()),
        )),
    )
}

/// `Retry-After` in seconds.
fn retry_after() -> utoipa::openapi::header::Header {
    header(Type::Integer, "Seconds to wait before retrying.")
}

macro_rules! problem_response {
    ($(#[$doc:meta])* $name:ident, $description:expr $(, $header:literal => $value:expr)* $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let response = problem($description)
                    $(.header($header, $value))*
                    .build();
                (stringify!($name), response.into())
            }
        }
    };
}

problem_response!(
    BadRequest,
    "The request line or a header is wrong: a malformed path id, an unknown or invalid \
     query parameter, malformed JSON, a bad `Idempotency-Key`/`If-Match` header, two \
     different API keys (`ambiguous_credentials`); or a bulk request asks for more than one \
     request may: more items than allowed (`too_many_items`, naming the limit) or an entry \
     named by two items (`duplicate_item`, naming it and its positions)."
);
problem_response!(
    Unauthorized,
    "No key, or an unknown, malformed, revoked or expired one (all alike).",
    "WWW-Authenticate" => header(Type::String, "`Bearer realm=\"labcat\"`.")
);
problem_response!(
    Forbidden,
    "The key lacks the scope this needs (`read` or `write` for GET, `write` for changes, \
     `admin` for other users' keys), or asked to grant a scope it does not hold."
);
problem_response!(
    NotFound,
    "No such resource, or it belongs to someone else (the two are not told apart)."
);
problem_response!(
    Conflict,
    "A physical sample with this name exists (`duplicate_name`; `detail.physical_sample_id` \
     names it), a request with this `Idempotency-Key` is still running \
     (`idempotency_in_progress`), or the user already holds the most active API keys \
     allowed (`too_many_api_keys`)."
);
problem_response!(
    Gone,
    "The cursor is older than the events the feed keeps (`events.retention_days`): events \
     after it were pruned (`cursor_expired`). Start again without `after`."
);
problem_response!(
    PreconditionFailed,
    "`If-Match` names an ETag the entry no longer has; nothing was changed.",
    "ETag" => header(Type::String, "The entry's current ETag.")
);
problem_response!(
    RequestTimeout,
    "The body had not all arrived when the request's time ran out \
     (`server.request_timeout_ms`): `request_timeout`. The connection is closed."
);
problem_response!(
    PayloadTooLarge,
    "The body is larger than the server's limit (`server.max_body_bytes`, 1 MiB by default)."
);
problem_response!(
    UnsupportedMediaType,
    "The body is not JSON: send `application/json` (or another `+json` type such as \
     `application/merge-patch+json`)."
);
problem_response!(
    UnprocessableContent,
    "The body is JSON but breaks the rules: not an object, an unknown or read-only member, a \
     wrong type, a value outside an enum (with `allowed_values`), an unknown physical sample, \
     a metadata limit; or the `Idempotency-Key` was used with a different request. `errors` \
     lists every problem found."
);
problem_response!(
    PreconditionRequired,
    "This server requires `If-Match` on writes (`writes.require_if_match`): GET the entry \
     and send its ETag."
);
problem_response!(
    TooManyRequests,
    "The user used up its rate limit for this kind of request (reads and writes are counted \
     apart, every key of a user together; a bulk request costs one token per item), or this \
     client address presented too many unknown keys (policy `auth_failure`).",
    "Retry-After" => retry_after(),
    "RateLimit" => header(Type::String, "`\"<policy>\";r=<left>;t=<seconds until full>`."),
    "RateLimit-Policy" => header(Type::String, "`\"<policy>\";q=<burst>;w=<seconds to refill>`."),
);
problem_response!(
    ServiceUnavailable,
    "The database is unreachable or too slow right now (a statement ran, or waited for a \
     lock, longer than `database.statement_timeout_ms`); retry later.",
    "Retry-After" => retry_after()
);
