//! Per-key rate limiting: a token bucket per API key and request class, kept in this
//! process's memory. Every instance keeps its own buckets, so N instances behind a load
//! balancer let a key through at up to N times the configured rate.
//!
//! The buckets are checked right after authentication (see `auth::principal`), and the
//! outcome is told in the IETF `RateLimit-Policy` / `RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers) on every authenticated response.

use std::num::NonZeroU32;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::RateLimitSettings;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

type KeyedLimiter =
    RateLimiter<Uuid, DashMapStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

/// Which bucket a request draws from: reads (GET, HEAD) or writes (everything else), so a
/// key's burst of reads never starves its writes and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
}

impl Class {
    pub fn of(method: &Method) -> Self {
        if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
            Class::Read
        } else {
            Class::Write
        }
    }

    pub fn policy(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
        }
    }
}

struct Bucket {
    limiter: KeyedLimiter,
    per_second: u32,
    burst: u32,
}

impl Bucket {
    fn new(per_second: u32, burst: u32) -> Self {
        // Validated at start-up; 1 is only a fallback for hand-built settings.
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst_size = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::dashmap(Quota::per_second(rate).allow_burst(burst_size))
                .with_middleware::<StateInformationMiddleware>(),
            per_second: rate.get(),
            burst: burst_size.get(),
        }
    }

    /// Seconds for `units` tokens to come back, rounded up.
    fn seconds_for(&self, units: f64) -> u64 {
        (units / f64::from(self.per_second)).ceil().max(0.0) as u64
    }
}

/// The buckets of this process.
pub struct RateLimits {
    read: Bucket,
    write: Bucket,
}

/// Where a key stands after one request was counted: what the headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitStatus {
    pub policy: &'static str,
    /// Tokens in a full bucket (`q`), refilled over `window_secs` (`w`).
    pub quota: u32,
    pub window_secs: u64,
    /// Tokens left (`r`) and seconds until the bucket is full again (`t`).
    pub remaining: u32,
    pub reset_secs: u64,
    /// Set when the request was refused: seconds until one more is allowed.
    pub retry_after_secs: Option<u64>,
}

impl RateLimits {
    /// `None` when rate limiting is switched off.
    pub fn from_settings(settings: &RateLimitSettings) -> Option<Self> {
        settings.enabled.then(|| Self {
            read: Bucket::new(settings.read_per_second, settings.read_burst),
            write: Bucket::new(settings.write_per_second, settings.write_burst),
        })
    }

    /// Tokens in a full bucket for this method: the standing of a caller that has drawn
    /// none (the `/v2` surface reports it on unauthenticated responses).
    pub fn quota(&self, method: &Method) -> u32 {
        match Class::of(method) {
            Class::Read => self.read.burst,
            Class::Write => self.write.burst,
        }
    }

    /// Takes one token from the key's bucket for this method; `Err` when it is empty.
    pub fn check(&self, key_id: Uuid, method: &Method) -> Result<RateLimitStatus, RateLimitStatus> {
        let class = Class::of(method);
        let bucket = match class {
            Class::Read => &self.read,
            Class::Write => &self.write,
        };
        let status =
            |remaining: u32, reset_secs: u64, retry_after_secs: Option<u64>| RateLimitStatus {
                policy: class.policy(),
                quota: bucket.burst,
                window_secs: bucket.seconds_for(f64::from(bucket.burst)).max(1),
                remaining,
                reset_secs,
                retry_after_secs,
            };
        match bucket.limiter.check_key(&key_id) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = bucket.burst.saturating_sub(remaining);
                Ok(status(
                    remaining,
                    bucket.seconds_for(f64::from(missing)),
                    None,
                ))
            }
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(bucket.limiter.clock().now())
                    .as_secs_f64();
                let retry_after = (wait.ceil() as u64).max(1);
                let full_again = wait + f64::from(bucket.burst - 1) / f64::from(bucket.per_second);
                Err(status(0, full_again.ceil() as u64, Some(retry_after)))
            }
        }
    }
}

impl RateLimitStatus {
    /// `RateLimit-Policy`, `RateLimit` and, when refused, `Retry-After`.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let policy = format!(
            "\"{}\";q={};w={}",
            self.policy, self.quota, self.window_secs
        );
        let state = format!(
            "\"{}\";r={};t={}",
            self.policy, self.remaining, self.reset_secs
        );
        let mut headers = vec![
            (
                RATELIMIT_POLICY,
                HeaderValue::from_str(&policy).expect("ASCII"),
            ),
            (RATELIMIT, HeaderValue::from_str(&state).expect("ASCII")),
        ];
        if let Some(seconds) = self.retry_after_secs {
            headers.push((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        headers
    }
}

/// Middleware: puts the RateLimit headers on responses to authenticated requests (the
/// `Principal` extractor leaves the key's status in the request's extensions).
pub async fn headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let status = response
        .request()
        .extensions()
        .get::<RateLimitStatus>()
        .cloned();
    if let Some(status) = status {
        for (name, value) in status.headers() {
            if !response.headers().contains_key(&name) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        RateLimits::from_settings(&RateLimitSettings {
            enabled: true,
            read_per_second: per_second,
            read_burst: burst,
            write_per_second: per_second,
            write_burst: burst,
        })
        .unwrap()
    }

    #[test]
    fn a_key_gets_its_burst_then_is_refused_with_a_retry_time() {
        let limits = limits(1, 3);
        let key = Uuid::new_v4();
        let remaining: Vec<u32> = (0..3)
            .map(|_| limits.check(key, &Method::POST).unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limits.check(key, &Method::POST).unwrap_err();
        assert_eq!(refused.retry_after_secs, Some(1));
        assert_eq!(refused.remaining, 0);
        assert_eq!((refused.quota, refused.window_secs), (3, 3));
    }

    #[test]
    fn reads_and_writes_and_keys_have_separate_buckets() {
        let limits = limits(1, 1);
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(limits.check(alice, &Method::GET).is_ok());
        assert!(limits.check(alice, &Method::GET).is_err());
        assert!(limits.check(alice, &Method::PATCH).is_ok());
        assert!(limits.check(bob, &Method::GET).is_ok());
    }

    #[test]
    fn headers_follow_the_ietf_draft_syntax() {
        let status = RateLimitStatus {
            policy: "read",
            quota: 100,
            window_secs: 1,
            remaining: 0,
            reset_secs: 1,
            retry_after_secs: Some(1),
        };
        let headers: Vec<(String, String)> = status
            .headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            headers,
            [
                ("ratelimit-policy".into(), "\"read\";q=100;w=1".into()),
                ("ratelimit".into(), "\"read\";r=0;t=1".into()),
                ("retry-after".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn switched_off_means_no_buckets() {
        let settings = RateLimitSettings {
            enabled: false,
            read_per_second: 1,
            read_burst: 1,
            write_per_second: 1,
            write_burst: 1,
        };
        assert!(RateLimits::from_settings(&settings).is_none());
    }
}
