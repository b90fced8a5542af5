//! Webhooks and their deliveries.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::DbResult;

/// A webhook as its admins see it (the secrets are never read out with it).
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub consecutive_failures: i32,
}

/// What a `WebhookRecord` is read from (`db::row`).
macro_rules! webhook_columns {
    () => {
        "webhook_id, project_id, url, events, enabled, disabled_reason, created_by, created_at, \
         updated_at, consecutive_failures"
    };
}

pub struct NewWebhook<'a> {
    pub project_id: Uuid,
    pub url: &'a str,
    pub events: &'a [&'a str],
    pub sealed_secret: &'a [u8],
    pub created_by: &'a str,
}

/// Inserts the webhook; it hears of events placed after now.
pub async fn insert(db: impl PgExecutor<'_>, webhook: &NewWebhook<'_>) -> DbResult<WebhookRecord> {
    let record = sqlx::query_as(concat!(
        "INSERT INTO webhooks (webhook_id, project_id, url, events, secret, created_by, cursor)
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT last_position FROM event_feed))
         RETURNING ",
        webhook_columns!(),
        ""
    ))
    .bind(Uuid::now_v7())
    .bind(webhook.project_id)
    .bind(webhook.url)
    .bind(webhook.events)
    .bind(webhook.sealed_secret)
    .bind(webhook.created_by)
    .fetch_one(db)
    .await?;
    Ok(record)
}

pub async fn list(db: impl PgExecutor<'_>, project: Uuid) -> DbResult<Vec<WebhookRecord>> {
    let records = sqlx::query_as(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE project_id = $1 ORDER BY created_at"
    ))
    .bind(project)
    .fetch_all(db)
    .await?;
    Ok(records)
}

pub async fn get(
    db: impl PgExecutor<'_>,
    project: Uuid,
    webhook: Uuid,
) -> DbResult<Option<WebhookRecord>> {
    let record = sqlx::query_as(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE project_id = $1 AND webhook_id = $2"
    ))
    .bind(project)
    .bind(webhook)
    .fetch_optional(db)
    .await?;
    Ok(record)
}

pub struct WebhookUpdate<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [&'a str]>,
    pub enabled: Option<bool>,
    /// A rotation: the new sealed secret, and how long the current one keeps signing.
    pub rotation: Option<(&'a [u8], chrono::Duration)>,
}

/// Applies `update`; turning a webhook on clears why it was off and its failure count.
pub async fn update(
    db: impl PgExecutor<'_>,
    project: Uuid,
    webhook: Uuid,
    update: &WebhookUpdate<'_>,
) -> DbResult<Option<WebhookRecord>> {
    let (secret, overlap) = match update.rotation {
        Some((secret, overlap)) => (Some(secret), Some(overlap.num_seconds() as f64)),
        None => (None, None),
    };
    let record = sqlx::query_as(concat!(
        "UPDATE webhooks SET
             url = COALESCE($3, url),
             events = COALESCE($4, events),
             enabled = COALESCE($5, enabled),
             disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
             consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END,
             previous_secret = CASE WHEN $6::bytea IS NULL THEN previous_secret ELSE secret END,
             previous_expires_at = CASE WHEN $6::bytea IS NULL THEN previous_expires_at
                                        ELSE now() + make_interval(secs => $7) END,
             secret = COALESCE($6, secret),
             updated_at = now()
         WHERE project_id = $1 AND webhook_id = $2
         RETURNING ",
        webhook_columns!(),
        ""
    ))
    .bind(project)
    .bind(webhook)
    .bind(update.url)
    .bind(update.events)
    .bind(update.enabled)
    .bind(secret)
    .bind(overlap)
    .fetch_optional(db)
    .await?;
    Ok(record)
}

pub async fn delete(db: impl PgExecutor<'_>, project: Uuid, webhook: Uuid) -> DbResult<bool> {
    let deleted = sqlx::query("DELETE FROM webhooks WHERE project_id = $1 AND webhook_id = $2")
        .bind(project)
        .bind(webhook)
        .execute(db)
        .await?;
    Ok(deleted.rows_affected() == 1)
}

/// One delivery as its admins see it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub delivery_id: Uuid,
    pub position: i64,
    pub event_type: String,
    pub data_id: Option<Uuid>,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The webhook's deliveries, newest first, at most `limit`.
pub async fn deliveries(
    db: impl PgExecutor<'_>,
    webhook: Uuid,
    limit: i64,
) -> DbResult<Vec<DeliveryRecord>> {
    let deliveries = sqlx::query_as(
        "SELECT delivery_id, position, event_type, data_id, status, attempts, last_status_code,
                last_error, CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,
                created_at, delivered_at
         FROM webhook_deliveries WHERE webhook_id = $1
         ORDER BY position DESC LIMIT $2",
    )
    .bind(webhook)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(deliveries)
}

/// Makes the delivery due again now, as a new series of attempts; `false` if the webhook
/// has no such delivery.
pub async fn redeliver(db: impl PgExecutor<'_>, webhook: Uuid, delivery: Uuid) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries
         SET status = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL,
             created_at = now(), delivered_at = NULL
         WHERE webhook_id = $1 AND delivery_id = $2",
    )
    .bind(webhook)
    .bind(delivery)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An enabled webhook whose new events this instance turns into deliveries, locked so no
/// other instance does the same at once.
pub struct Subscriber {
    pub webhook_id: Uuid,
    pub project_id: Uuid,
    pub events: Vec<String>,
    pub cursor: i64,
}

pub async fn lock_subscribers(conn: &mut PgConnection) -> DbResult<Vec<Subscriber>> {
    let subscribers = sqlx::query_as(
        "SELECT webhook_id, project_id, events, cursor FROM webhooks
         WHERE enabled AND cursor < (SELECT last_position FROM event_feed)
         ORDER BY webhook_id FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(conn)
    .await?;
    Ok(subscribers)
}

/// Deliveries for one webhook's new events (each once, however often this is called), and
/// its cursor moved to `through`.
pub async fn enqueue(
    conn: &mut PgConnection,
    webhook: Uuid,
    positions: &[i64],
    event_types: &[&str],
    data_ids: &[Option<Uuid>],
    payloads: &[String],
    through: i64,
) -> DbResult<()> {
    let ids: Vec<Uuid> = positions.iter().map(|_| Uuid::now_v7()).collect();
    if !ids.is_empty() {
        sqlx::query(
        "INSERT INTO webhook_deliveries (delivery_id, webhook_id, position, event_type, data_id,
                                         payload)
         SELECT id, $1, position, event_type, data_id, payload
         FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::uuid[], $6::text[])
              AS d (id, position, event_type, data_id, payload)
         ON CONFLICT (webhook_id, position) DO NOTHING",
    )
    .bind(webhook)
    .bind(&ids)
    .bind(positions)
    .bind(event_types)
    .bind(data_ids)
    .bind(payloads)
    .execute(&mut *conn)
    .await?;
    }
    sqlx::query("UPDATE webhooks SET cursor = greatest(cursor, $2) WHERE webhook_id = $1")
        .bind(webhook)
        .bind(through)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A delivery this instance is attempting now.
pub struct Claimed {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    pub position: i64,
    pub data_id: Option<Uuid>,
    pub payload: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
}

/// Takes up to `limit` due deliveries of enabled webhooks for `lease_seconds`, oldest
/// first; of one entry's pending deliveries only a run from its oldest on, all due and
/// untaken (so the caller can send them in order, one after the other). Claims are made
/// one at a time across instances, so no two instances split one entry's run.
pub async fn claim(pool: &PgPool, limit: i64, lease_seconds: f64) -> DbResult<Vec<Claimed>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7408431590166071366)")
        .execute(&mut *tx)
        .await?;
    let mut claimed: Vec<Claimed> = sqlx::query_as(
        "WITH pending AS (
             SELECT d.delivery_id, d.webhook_id, d.data_id, d.position,
                    d.next_attempt_at <= now()
                        AND (d.lease_until IS NULL OR d.lease_until < now()) AS ready
             FROM webhook_deliveries AS d
             JOIN webhooks AS w ON w.webhook_id = d.webhook_id AND w.enabled
             WHERE d.status = 'pending'
         ), in_order AS (
             SELECT delivery_id, position, ready,
                    data_id IS NULL OR bool_and(ready) OVER (
                        PARTITION BY webhook_id, data_id ORDER BY position) AS clear
             FROM pending
         ), due AS (
             SELECT delivery_id FROM in_order WHERE ready AND clear
             ORDER BY position LIMIT $1
         )
         UPDATE webhook_deliveries AS d
         SET lease_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
         FROM due, webhooks AS w
         WHERE d.delivery_id = due.delivery_id AND w.webhook_id = d.webhook_id
         RETURNING d.delivery_id, d.webhook_id, d.position, d.data_id, d.payload, d.attempts,
                   d.created_at, w.url, w.secret,
                   CASE WHEN w.previous_expires_at > now() THEN w.previous_secret END
                       AS previous_secret",
    )
    .bind(limit)
    .bind(lease_seconds)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    claimed.sort_by_key(|delivery| delivery.position);
    Ok(claimed)
}

/// How one attempt went.
pub struct Outcome {
    pub delivery_id: Uuid,
    pub webhook_id: Uuid,
    /// `false`: not attempted after all (an earlier delivery of its entry failed first):
    /// it is released as it was.
    pub tried: bool,
    pub delivered: bool,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// For a failure: when to try again, or `None` to give up.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records the attempts' outcomes and each webhook's run of failures; a webhook whose run
/// reaches `disable_after` is disabled with the reason.
pub async fn record(pool: &PgPool, outcomes: &[Outcome], disable_after: i32) -> DbResult<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = outcomes.iter().map(|o| o.delivery_id).collect();
    let webhooks: Vec<Uuid> = outcomes.iter().map(|o| o.webhook_id).collect();
    let tried: Vec<bool> = outcomes.iter().map(|o| o.tried).collect();
    let delivered: Vec<bool> = outcomes.iter().map(|o| o.delivered).collect();
    let codes: Vec<Option<i32>> = outcomes.iter().map(|o| o.status_code).collect();
    let errors: Vec<Option<&str>> = outcomes.iter().map(|o| o.error.as_deref()).collect();
    let retry_at: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.retry_at).collect();
    sqlx::query(
        "WITH outcome AS (
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int[], $5::text[],
                                  $6::timestamptz[], $8::bool[])
                    AS o (delivery_id, webhook_id, delivered, code, error, retry_at, tried)
         ), released AS (
             UPDATE webhook_deliveries AS d SET attempts = d.attempts - 1, lease_until = NULL
             FROM outcome AS o WHERE d.delivery_id = o.delivery_id AND NOT o.tried
         ), recorded AS (
             UPDATE webhook_deliveries AS d SET
                 status = CASE WHEN o.delivered THEN 'delivered'
                               WHEN o.retry_at IS NULL THEN 'failed' ELSE 'pending' END,
                 last_status_code = o.code,
                 last_error = o.error,
                 next_attempt_at = COALESCE(o.retry_at, d.next_attempt_at),
                 delivered_at = CASE WHEN o.delivered THEN now() END,
                 lease_until = NULL
             FROM outcome AS o WHERE d.delivery_id = o.delivery_id AND o.tried
         ), tally AS (
             SELECT webhook_id, bool_or(delivered) AS any_delivered,
                    count(*) FILTER (WHERE NOT delivered) AS failures,
                    (array_agg(error ORDER BY delivered, delivery_id DESC)
                         FILTER (WHERE NOT delivered))[1] AS last_error
             FROM outcome WHERE tried GROUP BY webhook_id
         )
         UPDATE webhooks AS w SET
             consecutive_failures = CASE WHEN t.any_delivered THEN 0
                                         ELSE w.consecutive_failures + t.failures END,
             enabled = w.enabled AND (t.any_delivered
                                      OR w.consecutive_failures + t.failures < $7),
             disabled_reason = CASE
                 WHEN NOT t.any_delivered AND w.consecutive_failures + t.failures >= $7
                      AND w.enabled
                 THEN format('disabled after %s failed attempts in a row; the last: %s',
                             w.consecutive_failures + t.failures, t.last_error)
                 ELSE w.disabled_reason END
         FROM tally AS t WHERE w.webhook_id = t.webhook_id",
    )
    .bind(&ids)
    .bind(&webhooks)
    .bind(&delivered)
    .bind(&codes)
    .bind(&errors)
    .bind(&retry_at)
    .bind(disable_after)
    .bind(&tried)
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes finished deliveries older than the event retention.
pub async fn prune(pool: &PgPool, retention: std::time::Duration) -> DbResult<u64> {
    let pruned = sqlx::query(
        "DELETE FROM webhook_deliveries
         WHERE status <> 'pending' AND created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(pruned.rows_affected())
}
