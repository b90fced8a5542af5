//! Keys that checked out recently, so most requests need no authentication round trip.
//! An entry lives at most `auth.key_cache_seconds` (≤ 5 s): a key revoked on another
//! instance stops working within that time; one revoked through this instance at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;

use super::KeyHash;
use super::principal::Principal;

#[derive(Clone)]
struct CachedKey {
    principal: Principal,
    expires_at: Option<DateTime<Utc>>,
}

pub struct KeyCache(Option<Cache<KeyHash, CachedKey>>);

impl KeyCache {
    /// A cache whose entries live `ttl`; a zero `ttl` turns caching off.
    pub fn new(ttl: Duration) -> Self {
        if ttl.is_zero() {
            return Self(None);
        }
        Self(Some(
            Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .build(),
        ))
    }

    /// The cached caller for `hash`, unless the key has expired since it was cached.
    pub fn get(&self, hash: &KeyHash) -> Option<Principal> {
        let cached = self.0.as_ref()?.get(hash)?;
        match cached.expires_at {
            Some(at) if at <= Utc::now() => None,
            _ => Some(cached.principal),
        }
    }

    pub fn insert(&self, hash: KeyHash, principal: Principal, expires_at: Option<DateTime<Utc>>) {
        if let Some(cache) = &self.0 {
            cache.insert(
                hash,
                CachedKey {
                    principal,
                    expires_at,
                },
            );
        }
    }

    /// Forgets one key or session (a session that was signed out).
    pub fn remove(&self, hash: &KeyHash) {
        if let Some(cache) = &self.0 {
            cache.invalidate(hash);
        }
    }

    /// Forgets every key (after a revocation: it is rare, and the cache refills in one
    /// round trip per key).
    pub fn clear(&self) {
        if let Some(cache) = &self.0 {
            cache.invalidate_all();
        }
    }
}
