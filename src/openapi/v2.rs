//! Schemas and error responses of the Seven Bridges-compatible `/v2` surface, whose shapes
//! are Seven Bridges' own (see `routes::v2::shape` and `routes::v2::error`).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, PartialSchema, ToResponse, ToSchema};

use crate::routes::v2::shape::FILE_FIELDS;

/// A Seven Bridges error.
#[derive(ToSchema)]
#[schema(examples(json!({
    "status": 404,
    "code": 5002,
    "message": "Requested file 0192b3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b does not exist.",
    "more_info": "labcat error 'not_found', request id 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
})))]
pub struct SbgError {
    /// The HTTP status.
    pub status: u16,
    /// Seven Bridges' numeric code (5002: no such file, 90001: unauthorized, ...); never 0.
    #[schema(minimum = 1)]
    pub code: u32,
    pub message: String,
    /// labcat's own error code and the request id.
    pub more_info: String,
}

/// A file: a data entry in Seven Bridges' shape. With `?fields=`, only the selected
/// members, plus `href` and `id`.
#[derive(ToSchema)]
pub struct SbgFile {
    /// Absolute URL of this file.
    pub href: String,
    /// The entry's `data_id`.
    pub id: String,
    /// The entry's `raw_name`.
    #[schema(required = false)]
    pub name: String,
    /// Bytes (`raw_size_gb` × 10⁹), or `null` when unknown.
    #[schema(required = false)]
    pub size: Option<i64>,
    /// The `/v2` id of the entry's project, `owner/slug`.
    #[schema(required = false)]
    pub project: String,
    /// Always `null` (labcat has no folders).
    #[schema(required = false, value_type = Option<String>)]
    pub parent: Option<()>,
    #[schema(required = false, inline)]
    pub r#type: SbgFileType,
    #[schema(required = false)]
    pub created_on: chrono::DateTime<chrono::Utc>,
    #[schema(required = false)]
    pub modified_on: chrono::DateTime<chrono::Utc>,
    /// `{"type": "PLATFORM"}`.
    #[schema(required = false, value_type = Object)]
    pub storage: serde_json::Value,
    /// Always `{}`.
    #[schema(required = false, value_type = Object)]
    pub origin: serde_json::Value,
    #[schema(required = false)]
    pub tags: Vec<String>,
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SbgFileType {
    File,
}

/// One page of files.
#[derive(ToSchema)]
pub struct SbgFilePage {
    /// This page.
    pub href: String,
    pub items: Vec<SbgFile>,
    /// `next` and `prev` pages, when there are.
    pub links: Vec<SbgLink>,
}

#[derive(ToSchema)]
pub struct SbgLink {
    pub href: String,
    #[schema(inline)]
    pub rel: SbgLinkRel,
    #[schema(inline)]
    pub method: SbgLinkMethod,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SbgLinkRel {
    Next,
    Prev,
}

#[derive(ToSchema)]
pub enum SbgLinkMethod {
    #[serde(rename = "GET")]
    Get,
}

/// `PATCH /v2/files/{file_id}`: the name, and a whole new metadata and tags. Other file
/// members are read-only (400).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SbgFilePatch {
    #[schema(
        required = false,
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\u0000]*$"
    )]
    pub name: String,
    /// Replaces the metadata; `null` members are left out.
    #[schema(required = false, value_type = Object)]
    pub metadata: serde_json::Value,
    #[schema(required = false)]
    pub tags: SbgTags,
}

/// A file's tags: at most 100 distinct ones (duplicates are dropped, the first kept).
#[derive(ToSchema)]
pub struct SbgTags(pub Vec<SbgTag>);

#[derive(ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[^\u0000]*$")]
pub struct SbgTag(pub String);

/// `POST /v2/bulk/files/get|delete`.
#[derive(ToSchema)]
pub struct SbgFileIds {
    /// At most `writes.bulk_max_items` (1000 by default) and the user's rate-limit bucket
    /// (one token per item); each file at most once.
    pub file_ids: Vec<String>,
}

/// `POST /v2/bulk/files/update|edit`.
#[derive(ToSchema)]
pub struct SbgBulkFiles {
    /// At most `writes.bulk_max_items` (1000 by default) and the user's rate-limit bucket
    /// (one token per item); each file at most once.
    pub items: Vec<SbgBulkFile>,
}

/// One file to change: `id` (or `file_id`) and what to set. Other members of a file
/// object are ignored, so a fetched file can be sent back as it is.
#[derive(ToSchema)]
pub struct SbgBulkFile {
    pub id: String,
    #[schema(required = false)]
    pub name: Option<String>,
    #[schema(required = false)]
    pub tags: Option<Vec<SbgTag>>,
    #[schema(required = false, value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// Results in request order: each a `resource` or an `error`.
#[derive(ToSchema)]
pub struct SbgBulkResults {
    pub items: Vec<SbgBulkResult>,
}

#[derive(ToSchema)]
pub struct SbgBulkResult {
    /// The file (for a delete, `{"id"}` only).
    #[schema(required = false)]
    pub resource: SbgFile,
    #[schema(required = false)]
    pub error: SbgError,
}

/// The caller. labcat knows only the user id; the other members are `null`.
#[derive(ToSchema)]
pub struct SbgUser {
    pub href: String,
    pub username: String,
    #[schema(value_type = Option<String>)]
    pub email: Option<()>,
    #[schema(value_type = Option<String>)]
    pub first_name: Option<()>,
    #[schema(value_type = Option<String>)]
    pub last_name: Option<()>,
    #[schema(value_type = Option<String>)]
    pub affiliation: Option<()>,
    #[schema(value_type = Option<String>)]
    pub phone: Option<()>,
    #[schema(value_type = Option<String>)]
    pub address: Option<()>,
    #[schema(value_type = Option<String>)]
    pub state: Option<()>,
    #[schema(value_type = Option<String>)]
    pub country: Option<()>,
    #[schema(value_type = Option<String>)]
    pub zip_code: Option<()>,
    #[schema(value_type = Option<String>)]
    pub city: Option<()>,
    #[schema(value_type = Option<String>)]
    pub role: Option<()>,
}

/// The caller's request-rate standing (`instance_limit` is always -1: labcat runs no
/// compute instances).
#[derive(ToSchema)]
pub struct SbgRateLimit {
    pub rate: SbgRate,
    pub instance_limit: SbgRate,
}

#[derive(ToSchema)]
pub struct SbgRate {
    /// -1 when requests are not limited.
    pub limit: i64,
    pub remaining: i64,
    /// When the bucket is full again, in epoch seconds.
    pub reset: i64,
}

/// `GET /v2/files` filters and paging (Seven Bridges' own parameters). Besides these,
/// `metadata.<key>=<value>` keeps files whose metadata key has the value (repeat a key for
/// any of several values) and `origin.<key>` matches nothing (labcat files have no
/// origin). Any other parameter is a 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbgFileQuery {
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
    /// Only files of this project, by its `/v2` id `owner/slug` (a bare user id: that
    /// user's personal project); one the caller cannot read is a 404.
    #[param(pattern = r"^[^\u0000]*$")]
    pub project: Option<String>,
    /// labcat has no folders: any value is a 404.
    #[param(pattern = r"^[^\u0000]*$")]
    pub parent: Option<String>,
    /// labcat has no datasets: any value is a 404.
    #[param(pattern = r"^[^\u0000]*$")]
    pub dataset: Option<String>,
    /// Files with any of these names (repeatable).
    #[param(style = Form, explode = true, inline)]
    pub name: Option<Vec<NoNul>>,
    /// Files with any of these tags (repeatable).
    #[param(style = Form, explode = true, inline)]
    pub tag: Option<Vec<NoNul>>,
    /// Only these members of each file, comma-separated, plus `href` and `id`.
    #[param(style = Form, explode = false, inline)]
    pub fields: Option<Vec<SbgFileField>>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct SbgIfMatch {
    /// Write only if the file's ETag is one of these (`*`: any); a stale one is a 409.
    #[param(rename = "If-Match", required = false)]
    pub if_match: String,
}

/// `?fields=` on a single file.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbgFileFields {
    /// Only these members of the file, comma-separated, plus `href` and `id`.
    #[param(style = Form, explode = false)]
    pub fields: Option<Vec<SbgFileField>>,
}

/// A string without NUL.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^[^\u0000]*$")]
pub struct NoNul(pub String);

/// A member of a file object, as `?fields=` names it.
pub struct SbgFileField;

impl PartialSchema for SbgFileField {
    fn schema() -> RefOr<Schema> {
        let mut names = FILE_FIELDS.to_vec();
        names.extend(["_all", ""]);
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "A member of a file object (`_all`: every member; empty names are skipped).",
            ))
            .enum_values(Some(names))
            .into()
    }
}

impl ToSchema for SbgFileField {}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer)),
        ))
        .description(Some(description))
        .build()
}

/// The `X-RateLimit-*` headers every `/v2` response carries.
pub fn with_rate_limit_headers(response: ResponseBuilder) -> ResponseBuilder {
    response
        .header(
            "X-RateLimit-Limit",
            integer_header("Requests in a full bucket (-1: not limited)."),
        )
        .header("X-RateLimit-Remaining", integer_header("Requests left."))
        .header(
            "X-RateLimit-Reset",
            integer_header("When the bucket is full again, in epoch seconds."),
        )
}

macro_rules! sbg_error_response {
    ($name:ident, $description:expr) => {
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let response = ResponseBuilder::new().description($description).content(
                    "application/json",
                    Content::new(Some(utoipa::openapi::Ref::from_schema_name(
                        <SbgError as ToSchema>::name(),
                    ))),
                );
                (
                    stringify!($name),
                    with_rate_limit_headers(response).build().into(),
                )
            }
        }
    };
}

sbg_error_response!(
    SbgBadRequest,
    "Invalid request: an unknown or invalid query parameter or field, malformed JSON, a \
     body that breaks the rules (the message names each problem), a bulk request with too \
     many items or a file named twice, an entry rule such as a required If-Match, or an \
     `Idempotency-Key` that is malformed or was used with a different request."
);
sbg_error_response!(
    SbgUnauthorized,
    "No key, or an unknown, malformed, revoked or expired one."
);
sbg_error_response!(SbgForbidden, "The key lacks the scope this needs.");
sbg_error_response!(
    SbgNotFound,
    "No such file (or it is someone else's), user, project, folder or dataset."
);
sbg_error_response!(
    SbgConflict,
    "`If-Match` names an ETag the file no longer has (nothing was changed), or a request \
     with this `Idempotency-Key` is still running."
);
sbg_error_response!(
    SbgUnsupportedMediaType,
    "The body is not JSON (send `application/json`)."
);
sbg_error_response!(
    SbgTooManyRequests,
    "The user used up its rate limit (a bulk request costs one token per item), or this \
     client address presented too many unknown keys; wait until `X-RateLimit-Reset`."
);
sbg_error_response!(
    SbgServiceUnavailable,
    "The database is unreachable or too slow right now; retry later (code 90005, never 0)."
);

/// A project: `id` is `<created_by>/<slug>`. labcat stores no billing group, tags or
/// settings: `billing_group` is always the same UUID, `tags` `[]`, `settings` `{}` (or
/// what the create or update sent).
#[derive(ToSchema)]
pub struct SbgProject {
    pub href: String,
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    #[schema(inline)]
    pub r#type: SbgProjectType,
    #[schema(format = Uuid)]
    pub billing_group: String,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    #[schema(value_type = Option<String>)]
    pub root_folder: Option<()>,
    pub created_by: String,
    pub created_on: chrono::DateTime<chrono::Utc>,
    pub modified_on: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<String>)]
    pub category: Option<()>,
}

#[derive(ToSchema)]
pub enum SbgProjectType {
    #[serde(rename = "v2")]
    V2,
}

/// One page of projects.
#[derive(ToSchema)]
pub struct SbgProjectPage {
    pub href: String,
    pub items: Vec<SbgProject>,
    pub links: Vec<SbgLink>,
}

/// `POST /v2/projects`. `billing_group` and `tags` are accepted and ignored.
#[derive(ToSchema)]
pub struct SbgProjectCreate {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: String,
    #[schema(required = false, max_length = 4096)]
    pub description: Option<String>,
    #[schema(required = false)]
    pub billing_group: Option<String>,
    #[schema(required = false)]
    pub tags: Option<Vec<String>>,
    #[schema(required = false, value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// `PATCH /v2/projects/{owner}/{project}`. `billing_group`, `tags`, `type` and
/// `category` are accepted and ignored.
#[derive(ToSchema)]
pub struct SbgProjectPatch {
    #[schema(required = false, min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: String,
    #[schema(required = false, max_length = 4096)]
    pub description: Option<String>,
    #[schema(required = false)]
    pub billing_group: Option<String>,
    #[schema(required = false)]
    pub tags: Option<Vec<String>>,
    #[schema(required = false, value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// A member's role as Seven Bridges permissions: `read` and `copy` always, `write` for
/// editors and admins, everything for admins; `execute` as last set.
#[derive(ToSchema)]
pub struct SbgPermissions {
    pub read: bool,
    pub copy: bool,
    pub write: bool,
    pub execute: bool,
    pub admin: bool,
}

/// Permissions to set; any of them.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SbgPermissionsChange {
    #[schema(required = false)]
    pub read: bool,
    #[schema(required = false)]
    pub copy: bool,
    #[schema(required = false)]
    pub write: bool,
    #[schema(required = false)]
    pub execute: bool,
    #[schema(required = false)]
    pub admin: bool,
}

/// A member (a user).
#[derive(ToSchema)]
pub struct SbgMember {
    /// `…/v2/projects/<owner>/<slug>/members/<username>`.
    pub href: String,
    pub id: String,
    pub username: String,
    #[schema(value_type = Option<String>)]
    pub email: Option<()>,
    #[schema(inline)]
    pub r#type: SbgMemberType,
    pub permissions: SbgPermissions,
}

#[derive(ToSchema)]
pub enum SbgMemberType {
    #[serde(rename = "USER")]
    User,
}

/// `POST …/members`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SbgNewMember {
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_.@-]+$")]
    pub username: String,
    #[schema(required = false, inline)]
    pub r#type: SbgMemberType,
    #[schema(required = false)]
    pub permissions: SbgPermissionsChange,
}

/// One page of members.
#[derive(ToSchema)]
pub struct SbgMemberPage {
    pub href: String,
    pub items: Vec<SbgMember>,
    pub links: Vec<SbgLink>,
}

/// A project by its `/v2` id, `<owner>/<project>`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SbgProjectPath {
    /// The user who created the project.
    pub owner: String,
    /// Its short name (slug).
    pub project: String,
}

/// Paging of a collection.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbgPaging {
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
    /// Ignored.
    pub fields: Option<String>,
}

/// `GET /v2/projects` filters and paging. labcat projects have no tags or category, so a
/// filter on either matches nothing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SbgProjectQuery {
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
    /// Projects with exactly this name.
    pub name: Option<String>,
    /// Ignored.
    pub fields: Option<String>,
    #[param(style = Form, explode = true)]
    pub tags: Option<Vec<String>>,
    pub category: Option<String>,
}
