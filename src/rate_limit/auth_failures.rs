//! Failed authentications per client address (the TCP peer; forwarding headers are not
//! trusted). Every key lookup in the database takes a token from its address's bucket
//! first, and gives it back when the key was found, so only failures cost: an address
//! whose bucket is empty gets 429 without the database being asked. Taking before asking
//! (rather than counting afterwards) means concurrent guesses cannot all slip through
//! while the first ones are still being looked up.
//!
//! IPv6 addresses count by their /64: one host commonly holds a whole /64, and would
//! otherwise get a fresh bucket per address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AUTH_FAILURE_POLICY, RateLimitStatus};

pub struct AuthFailureLimits {
    /// Only addresses whose bucket is not full; absent means full.
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    burst: f64,
    /// Time for one token to come back.
    per_token: Duration,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl AuthFailureLimits {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        // Validated at start-up; 1 is only a fallback for hand-built settings.
        let per_minute = per_minute.max(1);
        Self {
            buckets: Mutex::new(HashMap::new()),
            burst: f64::from(burst.max(1)),
            per_token: Duration::from_secs(60) / per_minute,
        }
    }

    fn buckets(&self) -> MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tokens in `bucket` at `now`, refilled since it was last touched.
    fn level(&self, bucket: Bucket, now: Instant) -> f64 {
        let refilled =
            now.saturating_duration_since(bucket.at).as_secs_f64() / self.per_token.as_secs_f64();
        (bucket.tokens + refilled).min(self.burst)
    }

    /// Takes a token for a lookup from `address`, or refuses when there is none.
    pub fn admit(&self, address: IpAddr, now: Instant) -> Result<(), RateLimitStatus> {
        let address = counted_as(address);
        let mut buckets = self.buckets();
        let level = buckets
            .get(&address)
            .map_or(self.burst, |bucket| self.level(*bucket, now));
        if level >= 1.0 {
            let tokens = level - 1.0;
            buckets.insert(address, Bucket { tokens, at: now });
            return Ok(());
        }
        Err(self.refused(level))
    }

    /// Gives back the token `admit` took: the lookup was no authentication failure.
    pub fn forgive(&self, address: IpAddr, now: Instant) {
        let address = counted_as(address);
        let mut buckets = self.buckets();
        if let Some(bucket) = buckets.get(&address).copied() {
            let tokens = self.level(bucket, now) + 1.0;
            if tokens >= self.burst {
                buckets.remove(&address);
            } else {
                buckets.insert(address, Bucket { tokens, at: now });
            }
        }
    }

    fn refused(&self, level: f64) -> RateLimitStatus {
        let per_token = self.per_token.as_secs_f64();
        let retry_after = ((1.0 - level) * per_token).ceil().max(1.0) as u64;
        RateLimitStatus {
            policy: AUTH_FAILURE_POLICY,
            quota: self.burst as u32,
            window_secs: (self.burst * per_token).ceil().max(1.0) as u64,
            remaining: 0,
            reset_secs: ((self.burst - level) * per_token).ceil() as u64,
            retry_after_secs: Some(retry_after),
        }
    }

    /// Forgets the addresses whose bucket has filled up again.
    pub fn evict_full(&self, now: Instant) {
        let mut buckets = self.buckets();
        buckets.retain(|_, bucket| self.level(*bucket, now) < self.burst);
        buckets.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.buckets().len()
    }
}

/// The key an address is counted under: IPv4 (also when mapped into IPv6) as it is, IPv6
/// by its /64.
fn counted_as(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failures_empty_the_bucket_and_found_keys_cost_nothing() {
        let limits = AuthFailureLimits::new(60, 2);
        let now = Instant::now();
        let client = address("192.0.2.7");
        // A lookup that found its key gives its token back.
        for _ in 0..5 {
            limits.admit(client, now).unwrap();
            limits.forgive(client, now);
        }
        assert_eq!(limits.len(), 0, "a full bucket is not held");
        limits.admit(client, now).unwrap();
        limits.admit(client, now).unwrap();
        let refused = limits.admit(client, now).unwrap_err();
        assert_eq!(refused.policy, AUTH_FAILURE_POLICY);
        assert_eq!(refused.retry_after_secs, Some(1));
        assert!(
            limits.admit(address("192.0.2.8"), now).is_ok(),
            "another address"
        );
        // One token a second comes back.
        assert!(limits.admit(client, now + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            counted_as(address("2001:db8:1:2:aaaa::1")),
            counted_as(address("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            counted_as(address("2001:db8:1:2::1")),
            counted_as(address("2001:db8:1:3::1"))
        );
        assert_eq!(
            counted_as(address("::ffff:192.0.2.7")),
            address("192.0.2.7")
        );
    }

    #[test]
    fn refilled_addresses_are_evicted() {
        let limits = AuthFailureLimits::new(60, 2);
        let now = Instant::now();
        limits.admit(address("192.0.2.7"), now).unwrap();
        limits.evict_full(now);
        assert_eq!(limits.len(), 1);
        limits.evict_full(now + Duration::from_secs(1));
        assert_eq!(limits.len(), 0);
    }
}
