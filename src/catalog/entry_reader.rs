//! Reads of single entries by id, coalesced: requests that arrive while the database is
//! busy with earlier reads go to it together, as one statement, when a slot frees up.
//!
//! Under light load every read is its own statement and waits for nothing. Under heavy
//! load PostgreSQL answers one statement for many requests instead of one each, which is
//! what lets labcat serve more reads than one-statement-per-request could.

use prometheus::Histogram;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::auth::Principal;
use crate::db;
use crate::db::DbError;
use crate::db::data_entries::Wanted;
use crate::domain::{Access, DataEntry};
use crate::error::ApiError;

/// Most lookups answered by one statement.
const MAX_BATCH: usize = 128;

type Reply = Result<Option<DataEntry>, ApiError>;

struct Lookup {
    user_id: String,
    projects: Option<Vec<Uuid>>,
    data_id: Uuid,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct EntryReader {
    lookups: mpsc::UnboundedSender<Lookup>,
}

impl EntryReader {
    /// Starts the reader on the current Tokio runtime with `connections` connections of its
    /// own to the database `pool` connects to: one statement at a time on each. Its own
    /// connections, because a connection's socket is driven by the runtime that opened it,
    /// and the main pool's are opened by whichever HTTP worker needed one first; reading
    /// through them costs an extra thread wake-up per statement (bench/run: 18.6k GET/s
    /// through the main pool, 22.0k through its own).
    /// Each statement's number of reads goes into `batch_sizes`. It stops when the last
    /// `EntryReader` is dropped.
    pub fn start(pool: &PgPool, connections: u32, batch_sizes: Histogram) -> Self {
        let own_pool = db::pool_beside(pool, connections);
        let (lookups, pending) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(own_pool, pending, batch_sizes));
        Self { lookups }
    }

    /// The entry `data_id` if the caller may read it.
    pub async fn get(&self, principal: &Principal, data_id: Uuid) -> Reply {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            user_id: principal.user_id.clone(),
            projects: principal.projects.clone(),
            data_id,
            reply,
        };
        self.lookups
            .send(lookup)
            .map_err(|_| ApiError::Unavailable)?;
        answer.await.map_err(|_| ApiError::Unavailable)?
    }
}

/// Takes the first lookup, waits for a free connection (the pool's size is what bounds the
/// statements in flight), then takes every lookup that piled up meanwhile (up to
/// `MAX_BATCH`) as one batch. Lookups whose request has gone (timed out, client
/// disconnected) are dropped unread. When every `EntryReader` is gone, closes its
/// connections.
async fn dispatch(
    pool: PgPool,
    mut pending: mpsc::UnboundedReceiver<Lookup>,
    batch_sizes: Histogram,
) {
    while let Some(first) = pending.recv().await {
        let conn = pool.acquire().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        batch.retain(|lookup| !lookup.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        batch_sizes.observe(batch.len() as f64);
        tokio::spawn(answer(conn, batch));
    }
    pool.close().await;
}

async fn answer(conn: Result<PoolConnection<Postgres>, sqlx::Error>, batch: Vec<Lookup>) {
    let wanted: Vec<Wanted<'_>> = batch
        .iter()
        .map(|lookup| Wanted {
            access: Access {
                user_id: &lookup.user_id,
                projects: lookup.projects.as_deref(),
            },
            data_id: lookup.data_id,
        })
        .collect();
    let found = match conn {
        Ok(mut conn) => db::data_entries::get_many(&mut conn, &wanted).await,
        Err(error) => Err(DbError::from(error)),
    };
    match found {
        Ok(entries) => {
            for (lookup, entry) in batch.into_iter().zip(entries) {
                let _ = lookup.reply.send(Ok(entry));
            }
        }
        Err(error) => {
            let unavailable = matches!(error, DbError::Unavailable(_));
            if !unavailable {
                tracing::error!(%error, lookups = batch.len(), "batched entry read failed");
            }
            for lookup in batch {
                let _ = lookup.reply.send(Err(if unavailable {
                    ApiError::Unavailable
                } else {
                    ApiError::Internal(anyhow::anyhow!("batched entry read failed: {error}"))
                }));
            }
        }
    }
}
