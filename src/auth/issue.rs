//! Issuing keys: the one path the CLI, the first start and the tests all use.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::ApiKeySecret;
use crate::db::{self, DbResult, api_keys::KeyRecord};
use crate::domain::Scope;

/// Creates the user if new, then a key for it. The secret is returned once, here, and
/// only its hash is stored.
pub async fn issue_key(
    pool: &PgPool,
    user_id: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
) -> DbResult<(ApiKeySecret, KeyRecord)> {
    let secret = ApiKeySecret::generate();
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let mut transaction = pool.begin().await?;
    db::users::ensure(&mut *transaction, user_id).await?;
    let record = db::api_keys::insert(
        &mut *transaction,
        &db::api_keys::NewKey {
            key_id: Uuid::now_v7(),
            user_id,
            prefix: secret.display_prefix(),
            key_hash: secret.hash().as_bytes(),
            name,
            scopes: &scopes,
            expires_at,
        },
    )
    .await?;
    transaction.commit().await?;
    Ok((secret, record))
}
