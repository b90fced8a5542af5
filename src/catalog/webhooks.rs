//! Webhooks of a project, managed by its admins: create (the secret shown once), list, change
//! (URL, events, on/off, a new secret), delete; their deliveries, and redelivering one.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::projects::require_role;
use crate::auth::Principal;
use crate::db;
use crate::db::webhooks::{DeliveryRecord, NewWebhook, WebhookRecord, WebhookUpdate};
use crate::domain::Role;
use crate::domain::timestamp;
use crate::domain::webhook::{WebhookChange, WebhookSecret};
use crate::error::ApiError;

/// How long a rotated-out secret keeps signing deliveries alongside the new one, so
/// receivers can switch without missing any.
const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Deliveries one listing shows, newest first.
const DELIVERIES_LISTED: i64 = 100;

/// Seals webhook secrets for storage with a key every instance on the database shares.
#[derive(Clone)]
pub struct SecretSeal(Arc<XChaCha20Poly1305>);

impl SecretSeal {
    pub async fn load(pool: &PgPool) -> Result<Self, db::DbError> {
        let key = db::secrets::shared(pool, "webhook_secrets", rand::random()).await?;
        Ok(Self(Arc::new(XChaCha20Poly1305::new(&key.into()))))
    }

    /// `nonce || ciphertext`.
    pub fn seal(&self, secret: &WebhookSecret) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .0
            .encrypt(&nonce, secret.as_bytes())
            .expect("encrypting a 32-byte secret cannot fail");
        [&nonce[..], &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8]) -> Option<WebhookSecret> {
        let (nonce, ciphertext) = sealed.split_at_checked(24)?;
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        self.0
            .decrypt(&XNonce::from(nonce), ciphertext)
            .ok()
            .map(WebhookSecret::from_bytes)
    }
}

#[derive(Serialize)]
pub struct WebhookView {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_by: String,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Only when created or rotated: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn of(record: WebhookRecord, secret: Option<&WebhookSecret>) -> Self {
        Self {
            webhook_id: record.webhook_id,
            project_id: record.project_id,
            url: record.url,
            events: record.events,
            enabled: record.enabled,
            disabled_reason: record.disabled_reason,
            consecutive_failures: record.consecutive_failures,
            created_by: record.created_by,
            created_at: record.created_at,
            updated_at: record.updated_at,
            secret: secret.map(WebhookSecret::expose),
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    pub delivery_id: Uuid,
    /// The event's cursor in the feed.
    pub event_id: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed` (given up after `webhooks.retry_for_hours`).
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "timestamp::serialize_optional")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize_optional")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(record: DeliveryRecord) -> Self {
        Self {
            delivery_id: record.delivery_id,
            event_id: record.position.to_string(),
            event_type: record.event_type,
            data_id: record.data_id,
            status: record.status,
            attempts: record.attempts,
            last_status_code: record.last_status_code,
            last_error: record.last_error,
            next_attempt_at: record.next_attempt_at,
            created_at: record.created_at,
            delivered_at: record.delivered_at,
        }
    }
}

fn not_found(webhook: Uuid) -> ApiError {
    ApiError::NotFound {
        what: "webhook",
        id: webhook.to_string(),
    }
}

fn event_names(change: &WebhookChange) -> Option<Vec<&'static str>> {
    change
        .events
        .as_ref()
        .map(|events| events.iter().map(|e| e.as_str()).collect())
}

pub struct Webhooks<'a> {
    pub pool: &'a PgPool,
    pub seal: &'a SecretSeal,
    pub allow_private_networks: bool,
}

impl Webhooks<'_> {
    pub async fn create(
        &self,
        principal: &Principal,
        project: Uuid,
        body: Map<String, Value>,
    ) -> Result<WebhookView, ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        let change = WebhookChange::from_json(body, true, self.allow_private_networks)?;
        let secret = WebhookSecret::generate();
        let events = event_names(&change).expect("checked: required");
        let record = db::webhooks::insert(
            &mut *conn,
            &NewWebhook {
                project_id: project,
                url: change.url.as_ref().expect("checked: required").as_str(),
                events: &events,
                sealed_secret: &self.seal.seal(&secret),
                created_by: &principal.user_id,
            },
        )
        .await?;
        Ok(WebhookView::of(record, Some(&secret)))
    }

    pub async fn list(
        &self,
        principal: &Principal,
        project: Uuid,
    ) -> Result<Vec<WebhookView>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        let records = db::webhooks::list(&mut *conn, project).await?;
        Ok(records
            .into_iter()
            .map(|r| WebhookView::of(r, None))
            .collect())
    }

    pub async fn get(
        &self,
        principal: &Principal,
        project: Uuid,
        webhook: Uuid,
    ) -> Result<WebhookView, ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        let record = db::webhooks::get(&mut *conn, project, webhook)
            .await?
            .ok_or_else(|| not_found(webhook))?;
        Ok(WebhookView::of(record, None))
    }

    pub async fn update(
        &self,
        principal: &Principal,
        project: Uuid,
        webhook: Uuid,
        body: Map<String, Value>,
    ) -> Result<WebhookView, ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        let change = WebhookChange::from_json(body, false, self.allow_private_networks)?;
        let events = event_names(&change);
        let secret = change.rotate_secret.then(WebhookSecret::generate);
        let sealed = secret.as_ref().map(|s| self.seal.seal(s));
        let record = db::webhooks::update(
            &mut *conn,
            project,
            webhook,
            &WebhookUpdate {
                url: change.url.as_ref().map(|u| u.as_str()),
                events: events.as_deref(),
                enabled: change.enabled,
                rotation: sealed
                    .as_deref()
                    .map(|s| (s, chrono::Duration::hours(ROTATION_OVERLAP_HOURS))),
            },
        )
        .await?
        .ok_or_else(|| not_found(webhook))?;
        Ok(WebhookView::of(record, secret.as_ref()))
    }

    pub async fn delete(
        &self,
        principal: &Principal,
        project: Uuid,
        webhook: Uuid,
    ) -> Result<(), ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        if db::webhooks::delete(&mut *conn, project, webhook).await? {
            Ok(())
        } else {
            Err(not_found(webhook))
        }
    }

    pub async fn deliveries(
        &self,
        principal: &Principal,
        project: Uuid,
        webhook: Uuid,
    ) -> Result<Vec<DeliveryView>, ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        db::webhooks::get(&mut *conn, project, webhook)
            .await?
            .ok_or_else(|| not_found(webhook))?;
        let deliveries = db::webhooks::deliveries(&mut *conn, webhook, DELIVERIES_LISTED).await?;
        Ok(deliveries.into_iter().map(DeliveryView::from).collect())
    }

    pub async fn redeliver(
        &self,
        principal: &Principal,
        project: Uuid,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<(), ApiError> {
        let mut conn = self.pool.acquire().await?;
        require_role(&mut conn, principal, project, Role::Admin).await?;
        db::webhooks::get(&mut *conn, project, webhook)
            .await?
            .ok_or_else(|| not_found(webhook))?;
        if db::webhooks::redeliver(&mut *conn, webhook, delivery).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound {
                what: "delivery",
                id: delivery.to_string(),
            })
        }
    }
}
