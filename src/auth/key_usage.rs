//! Keeps `api_keys.last_used_at` roughly current without a write per request: each key's
//! use is written at most once per interval per process, off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::db;

pub struct KeyUsage {
    pool: PgPool,
    interval: Duration,
    last_written: Mutex<HashMap<Uuid, Instant>>,
}

impl KeyUsage {
    pub fn new(pool: PgPool, interval: Duration) -> Self {
        Self {
            pool,
            interval,
            last_written: Mutex::new(HashMap::new()),
        }
    }

    pub fn record(&self, key_id: Uuid) {
        let now = Instant::now();
        {
            let mut last_written = self.last_written.lock().unwrap_or_else(|e| e.into_inner());
            match last_written.get(&key_id) {
                Some(at) if now.duration_since(*at) < self.interval => return,
                _ => last_written.insert(key_id, now),
            };
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(error) = db::api_keys::touch_last_used(&pool, key_id).await {
                tracing::warn!(%key_id, %error, "could not record key use");
            }
        });
    }
}
