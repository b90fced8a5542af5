//! Upkeep off the request path, started with the application and stopped with it: expired
//! idempotency rows and old events are pruned in the background. (Requests never wait for it: a claim
//! treats an expired row as absent whether or not it has been pruned yet.)

use std::time::Duration;

use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::db;

/// How often expired idempotency rows are pruned, at most (sooner when the TTL is shorter).
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The background tasks; they stop when this is dropped.
pub struct Maintenance {
    pruning: JoinHandle<()>,
    pruning_events: JoinHandle<()>,
}

impl Maintenance {
    /// Starts the tasks on the current Tokio runtime. Every instance prunes: the statements
    /// touch only expired rows, so instances pruning at once just find less to do.
    pub fn start(pool: PgPool, idempotency_ttl: Duration, event_retention: Duration) -> Self {
        let every = |ttl: Duration| PRUNE_INTERVAL.min(ttl).max(Duration::from_secs(1));
        Self {
            pruning: tokio::spawn(prune_idempotency_keys(pool.clone(), every(idempotency_ttl))),
            pruning_events: tokio::spawn(prune_events(
                pool,
                event_retention,
                every(event_retention),
            )),
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.pruning.abort();
        self.pruning_events.abort();
    }
}

async fn prune_idempotency_keys(pool: PgPool, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    // After a stall (a database outage), one prune catches up; no burst of them.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match db::idempotency::prune_expired(&pool).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned expired idempotency keys"),
            Err(error) => tracing::warn!(%error, "could not prune expired idempotency keys"),
        }
    }
}

/// The change feed keeps `retention` of events (and webhook delivery records with them).
async fn prune_events(pool: PgPool, retention: Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match db::events::prune(&pool, retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned old events"),
            Err(error) => tracing::warn!(%error, "could not prune old events"),
        }
        match db::webhooks::prune(&pool, retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned old webhook deliveries"),
            Err(error) => tracing::warn!(%error, "could not prune old webhook deliveries"),
        }
    }
}
