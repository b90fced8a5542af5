//! Delivering webhooks, in the background of every instance.
//!
//! Two steps, both safe to run on several instances at once. *Enqueue*: for each enabled
//! webhook (row-locked, so one instance at a time), the project's new events of the types it
//! wants become delivery records, once each, and its cursor moves on. *Deliver*: due
//! deliveries are claimed with a lease (one claim at a time across instances, so each is
//! attempted by one), and of one entry's only a run from its oldest pending one on, sent one
//! after the other, so an entry's events arrive in order (after a failure the rest of the run
//! waits for its retry). Each is signed (Standard Webhooks) and POSTed, and the outcome
//! recorded: delivered, retried later with a doubling delay, or given up after
//! `webhooks.retry_for_hours`. A delivery whose instance dies mid-attempt is taken over when
//! its lease runs out: at least once. Records live in the database, so a restart loses none.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::webhooks::SecretSeal;
use crate::config::WebhookSettings;
use crate::db;
use crate::domain::event::{Event, FeedQuery};
use crate::domain::webhook::{self, WebhookSecret, address_allowed, retry_delay};

/// Events turned into deliveries per webhook per round, and deliveries claimed per round.
const BATCH: usize = 1000;
/// The pause between rounds while there is work, and the longest one while there is none.
const BUSY_PAUSE: Duration = Duration::from_millis(100);
const IDLE_PAUSE: Duration = Duration::from_millis(500);
/// Longest error text kept for a delivery.
const MAX_ERROR_CHARS: usize = 500;

/// The delivering task; it stops when this is dropped.
pub struct Dispatcher {
    task: JoinHandle<()>,
}

impl Dispatcher {
    pub fn start(pool: PgPool, settings: WebhookSettings) -> anyhow::Result<Self> {
        let client = client(&settings)?;
        Ok(Self {
            task: tokio::spawn(run(pool, client, settings)),
        })
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP client that cannot be pointed inwards: names resolve only to allowed addresses
/// (checked at every connection, so a name that re-resolves elsewhere is caught), no
/// redirects are followed, no proxy from the environment is used.
fn client(settings: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    crate::install_tls_provider();
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(GuardedResolver {
            allow_private_networks: settings.allow_private_networks,
        })
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs_f64(settings.attempt_timeout_seconds))
        .user_agent(concat!("labcat-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

struct GuardedResolver {
    allow_private_networks: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_networks;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|address| address_allowed(address.ip(), allow))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (webhooks.allow_private_networks)"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

async fn run(pool: PgPool, client: reqwest::Client, settings: WebhookSettings) {
    let seal = loop {
        match SecretSeal::load(&pool).await {
            Ok(seal) => break seal,
            Err(error) => {
                tracing::warn!(%error, "webhooks wait for the database");
                tokio::time::sleep(IDLE_PAUSE).await;
            }
        }
    };
    let mut pause = BUSY_PAUSE;
    loop {
        tokio::time::sleep(pause).await;
        let enqueued = enqueue(&pool).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not turn events into webhook deliveries");
            0
        });
        let attempted = deliver(&pool, &client, &seal, &settings)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "could not deliver webhooks");
                0
            });
        // A full batch: more are due at once. Some work: soon again (a round costs a few
        // statements, so not at once: under a write load there always is a little). Nothing:
        // back off.
        pause = if attempted == BATCH {
            Duration::ZERO
        } else if enqueued + attempted > 0 {
            BUSY_PAUSE
        } else {
            (pause * 2).clamp(BUSY_PAUSE, IDLE_PAUSE)
        };
    }
}

/// Turns new events into deliveries for every webhook no other instance is at; how many.
async fn enqueue(pool: &PgPool) -> Result<usize, db::DbError> {
    let mut tx = pool.begin().await?;
    let mut subscribers = db::webhooks::lock_subscribers(&mut tx).await?;
    // Webhooks at the same place in the feed (all of them, once caught up) read it once,
    // together: a round costs a read per cursor, not one per webhook.
    subscribers.sort_by_key(|subscriber| subscriber.cursor);
    let mut enqueued = 0;
    for group in subscribers.chunk_by(|a, b| a.cursor == b.cursor) {
        let projects: Vec<Uuid> = group.iter().map(|s| s.project_id).collect();
        let types: Vec<&str> = group
            .iter()
            .flat_map(|s| s.events.iter().map(String::as_str))
            .collect();
        let page =
            db::events::of_projects(&mut tx, &projects, &types, group[0].cursor, BATCH).await?;
        for subscriber in group {
            let wanted = feed_query(subscriber);
            let events: Vec<&Event> = page
                .events
                .iter()
                .filter(|event| wanted.wants(event))
                .collect();
            let payloads: Vec<String> = events
                .iter()
                .map(|event| serde_json::to_string(event).expect("an event serializes"))
                .collect();
            db::webhooks::enqueue(
                &mut tx,
                subscriber.webhook_id,
                &events.iter().map(|e| e.position).collect::<Vec<_>>(),
                &events
                    .iter()
                    .map(|e| e.event_type.as_str())
                    .collect::<Vec<_>>(),
                &events.iter().map(|e| e.data_id).collect::<Vec<_>>(),
                &payloads,
                page.read_through,
            )
            .await?;
            enqueued += events.len();
        }
    }
    tx.commit().await?;
    Ok(enqueued)
}

/// The events `subscriber`'s webhook is sent: its project's, of the types it asked for.
fn feed_query(subscriber: &db::webhooks::Subscriber) -> FeedQuery {
    FeedQuery {
        project_id: Some(subscriber.project_id),
        types: Some(
            subscriber
                .events
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect(),
        ),
        ..FeedQuery::default()
    }
}

/// Attempts the due deliveries this instance could claim; how many.
async fn deliver(
    pool: &PgPool,
    client: &reqwest::Client,
    seal: &SecretSeal,
    settings: &WebhookSettings,
) -> Result<usize, db::DbError> {
    // An attempt may take its whole timeout; the lease outlasts it, with room to record.
    let lease = settings.attempt_timeout_seconds * 2.0 + 1.0;
    let claimed = db::webhooks::claim(pool, BATCH as i64, lease).await?;
    let attempted = claimed.len();
    let outcomes: Vec<db::webhooks::Outcome> = futures_util::stream::iter(runs(claimed))
        .map(|run| send_in_order(client, seal, settings, run))
        .buffer_unordered(settings.concurrency)
        .flat_map(futures_util::stream::iter)
        .collect()
        .await;
    let disable_after = i32::try_from(settings.disable_after_failures).unwrap_or(i32::MAX);
    db::webhooks::record(pool, &outcomes, disable_after).await?;
    Ok(attempted)
}

/// The claimed deliveries as runs to send one after the other: one entry's in order, each
/// other on its own; oldest first.
fn runs(claimed: Vec<db::webhooks::Claimed>) -> Vec<Vec<db::webhooks::Claimed>> {
    let mut runs: Vec<Vec<db::webhooks::Claimed>> = Vec::new();
    let mut of_entry: std::collections::HashMap<(uuid::Uuid, uuid::Uuid), usize> =
        std::collections::HashMap::new();
    for delivery in claimed {
        match delivery.data_id {
            Some(data_id) => match of_entry.entry((delivery.webhook_id, data_id)) {
                std::collections::hash_map::Entry::Occupied(run) => runs[*run.get()].push(delivery),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(runs.len());
                    runs.push(vec![delivery]);
                }
            },
            None => runs.push(vec![delivery]),
        }
    }
    runs
}

/// Sends a run in order; once one fails, the rest wait (released untried) for its retry.
async fn send_in_order(
    client: &reqwest::Client,
    seal: &SecretSeal,
    settings: &WebhookSettings,
    run: Vec<db::webhooks::Claimed>,
) -> Vec<db::webhooks::Outcome> {
    let mut outcomes = Vec::with_capacity(run.len());
    let mut blocked = false;
    for delivery in run {
        if blocked {
            outcomes.push(db::webhooks::Outcome {
                delivery_id: delivery.delivery_id,
                webhook_id: delivery.webhook_id,
                tried: false,
                delivered: false,
                status_code: None,
                error: None,
                retry_at: None,
            });
            continue;
        }
        let outcome = attempt(client, seal, settings, delivery).await;
        blocked = !outcome.delivered;
        outcomes.push(outcome);
    }
    outcomes
}

async fn attempt(
    client: &reqwest::Client,
    seal: &SecretSeal,
    settings: &WebhookSettings,
    delivery: db::webhooks::Claimed,
) -> db::webhooks::Outcome {
    let sent = send(client, seal, settings, &delivery).await;
    let (delivered, status_code, error) = match sent {
        Ok(status) if status.is_success() => (true, Some(i32::from(status.as_u16())), None),
        Ok(status) => (
            false,
            Some(i32::from(status.as_u16())),
            Some(format!("the receiver answered {status}")),
        ),
        Err(error) => (false, None, Some(error)),
    };
    let retry_at = (!delivered)
        .then(|| {
            let initial = Duration::from_secs_f64(settings.retry_initial_seconds);
            let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
            let next = Utc::now() + retry_delay(initial, attempts);
            let give_up_at = delivery.created_at
                + chrono::Duration::milliseconds((settings.retry_for_hours * 3.6e6) as i64);
            (next <= give_up_at).then_some(next)
        })
        .flatten();
    if let Some(error) = &error {
        tracing::debug!(delivery = %delivery.delivery_id, %error, "webhook attempt failed");
    }
    db::webhooks::Outcome {
        delivery_id: delivery.delivery_id,
        webhook_id: delivery.webhook_id,
        tried: true,
        delivered,
        status_code,
        error: error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
        retry_at,
    }
}

/// POSTs one delivery, signed with the current secret (and the previous one while it is
/// still honoured). The URL is checked again: the setting may have changed since.
async fn send(
    client: &reqwest::Client,
    seal: &SecretSeal,
    settings: &WebhookSettings,
    delivery: &db::webhooks::Claimed,
) -> Result<reqwest::StatusCode, String> {
    let url = webhook::parse_url(&delivery.url, settings.allow_private_networks)
        .map_err(|error| format!("refused: {}", error.message))?;
    let secret = seal
        .open(&delivery.secret)
        .ok_or("the webhook's secret cannot be unsealed")?;
    let previous = delivery
        .previous_secret
        .as_deref()
        .and_then(|s| seal.open(s));
    let mut secrets: Vec<&WebhookSecret> = vec![&secret];
    secrets.extend(previous.as_ref());
    let message_id = delivery.delivery_id.to_string();
    let timestamp = Utc::now().timestamp();
    let signature = webhook::signature_header(
        &secrets,
        &message_id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status())
}

/// The whole chain of causes: reqwest's own message is often only "error sending request".
fn describe(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
