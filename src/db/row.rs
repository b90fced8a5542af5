//! How rows become domain types. Written as `macro_rules!` rather than sqlx's derives: those
//! live in sqlx's proc-macro crate, which compiles a second sqlx (and rustls, ring, tokio) for
//! the compiler and cost a cold build about a minute (bench/README.md, "Build time").

/// `sqlx::FromRow` by column name: each field is read from the column of the same name. The
/// fields are listed once; the struct literal makes a missing one a compile error.
macro_rules! from_row {
    ($type:ty { $($field:ident),+ $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $type {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                Ok(Self { $($field: row.try_get(stringify!($field))?),+ })
            }
        }
    };
}

/// A `text_enum!` (`as_str` and `FromStr`) as the PostgreSQL enum type `$pg_type`: written
/// and read as its text, so the Rust and SQL spellings are the same list.
macro_rules! pg_enum {
    ($type:ty => $pg_type:literal) => {
        impl sqlx::Type<sqlx::Postgres> for $type {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                sqlx::postgres::PgTypeInfo::with_name($pg_type)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $type {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl sqlx::Decode<'_, sqlx::Postgres> for $type {
            fn decode(
                value: sqlx::postgres::PgValueRef<'_>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                text.parse()
                    .map_err(|()| format!("{text:?} is not a {}", $pg_type).into())
            }
        }
    };
}

use crate::db::api_keys::{ActiveKey, KeyRecord};
use crate::db::idempotency::StoredRequest;
use crate::db::webhooks::{Claimed, DeliveryRecord, Subscriber, WebhookRecord};
use crate::domain::history::HistoryRecord;
use crate::domain::project::{Member, Project, ProjectView};
use crate::domain::{CharSourceType, DataEntry, PhysicalSample, PipelineStatus, Role};

pg_enum!(CharSourceType => "char_source_type");
pg_enum!(PipelineStatus => "pipeline_status");
pg_enum!(Role => "project_role");

from_row!(DataEntry {
    data_id,
    raw_name,
    char_source_type,
    pipeline_status,
    physical_sample_id,
    upload_datetime,
    last_updated,
    raw_size_gb,
    user_id,
    project_id,
    metadata,
    revision,
    tags,
    metadata_valid,
    metadata_errors,
});
from_row!(HistoryRecord {
    data_id,
    revision,
    operation,
    changed_at,
    actor_user_id,
    actor_key_id,
    request_id,
    changes,
    schema,
});
from_row!(PhysicalSample {
    physical_sample_id,
    name,
    user_id,
    project_id,
    created_at,
});
from_row!(ActiveKey {
    key_id,
    user_id,
    scopes,
    expires_at,
    projects,
});
from_row!(KeyRecord {
    key_id,
    user_id,
    prefix,
    name,
    scopes,
    created_at,
    expires_at,
    revoked_at,
    last_used_at,
    projects,
});
from_row!(StoredRequest {
    fingerprint,
    status,
    headers,
    body,
});
from_row!(Project {
    project_id,
    name,
    slug,
    description,
    created_by,
    personal,
    created_at,
    modified_at,
});
from_row!(Member {
    user_id,
    role,
    execute,
});

/// A project row with the caller's `role` and its `physical_sample_count` beside it.
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for ProjectView {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Self {
            project: <Project as sqlx::FromRow<_>>::from_row(row)?,
            role: row.try_get("role")?,
            physical_sample_count: row.try_get("physical_sample_count")?,
        })
    }
}

from_row!(WebhookRecord {
    webhook_id,
    project_id,
    url,
    events,
    enabled,
    disabled_reason,
    created_by,
    created_at,
    updated_at,
    consecutive_failures,
});

from_row!(DeliveryRecord {
    delivery_id,
    position,
    event_type,
    data_id,
    status,
    attempts,
    last_status_code,
    last_error,
    next_attempt_at,
    created_at,
    delivered_at,
});

from_row!(Subscriber {
    webhook_id,
    project_id,
    events,
    cursor,
});

from_row!(Claimed {
    delivery_id,
    webhook_id,
    position,
    data_id,
    payload,
    attempts,
    created_at,
    url,
    secret,
    previous_secret,
});
