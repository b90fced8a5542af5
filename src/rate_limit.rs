//! Rate limiting, in this process's memory: a token bucket per user and request class,
//! and one per client address for failed authentications (see `auth_failures`). Every
//! instance keeps its own buckets, so N instances behind a load balancer let a user through
//! at up to N times the configured rate.
//!
//! The buckets belong to the user, not to the key: every key of a user draws from the same
//! two buckets, so minting a fresh key does not buy a fresh bucket. A request costs one
//! token, taken right after authentication (see `auth::principal`); a bulk request of N
//! items costs N, the rest taken by the handler once it has counted the items
//! (`charge_items`). The outcome is told in the IETF `RateLimit-Policy` / `RateLimit`
//! headers (draft-ietf-httpapi-ratelimit-headers) on every authenticated response.
//!
//! Buckets that have filled up again are indistinguishable from absent ones and are
//! dropped every `EVICTION_INTERVAL` (`spawn_eviction`), so the maps hold only the users
//! and addresses seen recently.

mod auth_failures;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use self::auth_failures::AuthFailureLimits;
use crate::config::RateLimitSettings;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// How often buckets that have filled up again are dropped.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(60);

/// The policy name of the per-address bucket for failed authentications.
pub const AUTH_FAILURE_POLICY: &str = "auth_failure";

/// Routes that take a POST only to read: they draw from the read bucket.
const READING_POSTS: &[&str] = &["/v2/bulk/files/get"];

type KeyedLimiter =
    RateLimiter<String, DashMapStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Which bucket a request draws from: reads (GET, HEAD, and the POSTs that only read) or
/// writes (everything else), so a user's burst of reads never starves its writes and the
/// other way round.
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

    /// The class of `request`: its method's, except for the POSTs that only read.
    pub fn of_request(request: &HttpRequest) -> Self {
        let reading_post = request.method() == Method::POST
            && READING_POSTS.contains(&request.match_pattern().as_deref().unwrap_or(""));
        if reading_post {
            Class::Read
        } else {
            Class::of(request.method())
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

    fn status(
        &self,
        class: Class,
        remaining: u32,
        reset_secs: u64,
        retry_after_secs: Option<u64>,
    ) -> RateLimitStatus {
        RateLimitStatus {
            policy: class.policy(),
            quota: self.burst,
            window_secs: self.seconds_for(f64::from(self.burst)).max(1),
            remaining,
            reset_secs,
            retry_after_secs,
        }
    }

    /// Takes `tokens` from `user`'s bucket, all or none. A refusal says when `tokens` plus
    /// `retry_tokens` more will be there: what the retry of the refused request needs.
    fn take(
        &self,
        class: Class,
        user: &str,
        tokens: NonZeroU32,
        retry_tokens: u32,
    ) -> Result<RateLimitStatus, Refusal> {
        let outcome = self
            .limiter
            .check_key_n(&user.to_owned(), tokens)
            .map_err(|_| Refusal::NeverEnough { bucket: self.burst })?;
        match outcome {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.burst.saturating_sub(remaining);
                Ok(self.status(class, remaining, self.seconds_for(f64::from(missing)), None))
            }
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(self.limiter.clock().now())
                    .as_secs_f64()
                    + f64::from(retry_tokens) / f64::from(self.per_second);
                let retry_after = (wait.ceil() as u64).max(1);
                let full_again = wait + f64::from(self.burst - 1) / f64::from(self.per_second);
                Err(Refusal::Empty(self.status(
                    class,
                    0,
                    full_again.ceil() as u64,
                    Some(retry_after),
                )))
            }
        }
    }

    fn evict_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Why tokens were not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough now; the status says when.
    Empty(RateLimitStatus),
    /// More than the bucket ever holds: the request can never be paid for.
    NeverEnough { bucket: u32 },
}

/// The buckets of this process.
pub struct RateLimits {
    read: Bucket,
    write: Bucket,
    auth_failures: AuthFailureLimits,
}

/// Where a caller stands after one request was counted: what the headers say.
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
            auth_failures: AuthFailureLimits::new(
                settings.auth_failures_per_minute,
                settings.auth_failure_burst,
            ),
        })
    }

    fn bucket(&self, class: Class) -> &Bucket {
        match class {
            Class::Read => &self.read,
            Class::Write => &self.write,
        }
    }

    /// Tokens in a full bucket for this method: the standing of a caller that has drawn
    /// none (the `/v2` surface reports it on unauthenticated responses).
    pub fn quota(&self, method: &Method) -> u32 {
        self.bucket(Class::of(method)).burst
    }

    /// Tokens in a full bucket of `class`: the most items one bulk request can pay for.
    pub fn bucket_size(&self, class: Class) -> u32 {
        self.bucket(class).burst
    }

    /// Takes one token from `user`'s bucket of `class`; `Err` when it is empty.
    pub fn check(&self, user: &str, class: Class) -> Result<RateLimitStatus, RateLimitStatus> {
        match self.bucket(class).take(class, user, NonZeroU32::MIN, 0) {
            Ok(status) => Ok(status),
            Err(Refusal::Empty(status)) => Err(status),
            // A bucket holds at least one token (validated at start-up).
            Err(Refusal::NeverEnough { .. }) => unreachable!("a bucket holds at least one"),
        }
    }

    /// Takes `tokens` more from `user`'s bucket of `class`, for a request whose first token
    /// was taken at authentication: all or none.
    pub fn charge_more(
        &self,
        user: &str,
        class: Class,
        tokens: NonZeroU32,
    ) -> Result<RateLimitStatus, Refusal> {
        // The retry pays for its first token at authentication again.
        self.bucket(class).take(class, user, tokens, 1)
    }

    /// Before asking the database about a key presented from `address`: takes a token from
    /// the address's failure bucket, or refuses when it is empty. Give it back with
    /// `forgive_lookup` unless the lookup found no key.
    pub fn admit_lookup(&self, address: IpAddr) -> Result<(), RateLimitStatus> {
        self.auth_failures.admit(address, Instant::now())
    }

    /// The lookup admitted for `address` found its key (or failed for another reason than
    /// the key): it was no authentication failure.
    pub fn forgive_lookup(&self, address: IpAddr) {
        self.auth_failures.forgive(address, Instant::now());
    }

    /// Drops the buckets that have filled up again: they hold nothing a fresh one would not.
    pub fn evict_idle(&self) {
        self.read.evict_idle();
        self.write.evict_idle();
        self.auth_failures.evict_full(Instant::now());
    }

    /// Buckets held now (users' read and write buckets, failing addresses).
    pub fn buckets_held(&self) -> usize {
        self.read.limiter.len() + self.write.limiter.len() + self.auth_failures.len()
    }
}

/// Evicts idle buckets every `EVICTION_INTERVAL` until `limits` is dropped.
pub fn spawn_eviction(limits: &Arc<RateLimits>) {
    let limits: Weak<RateLimits> = Arc::downgrade(limits);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(EVICTION_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match limits.upgrade() {
                Some(limits) => limits.evict_idle(),
                None => return,
            }
        }
    });
}

impl RateLimitStatus {
    /// What a refused caller is told.
    pub fn refusal(&self) -> String {
        let retry = self.retry_after_secs.unwrap_or(1);
        if self.policy == AUTH_FAILURE_POLICY {
            format!("too many failed authentications from this address; retry in {retry} s")
        } else {
            format!(
                "this user made too many {} requests; retry in {retry} s",
                self.policy
            )
        }
    }

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

    fn settings(per_second: u32, burst: u32) -> RateLimitSettings {
        RateLimitSettings {
            enabled: true,
            read_per_second: per_second,
            read_burst: burst,
            write_per_second: per_second,
            write_burst: burst,
            auth_failures_per_minute: 60,
            auth_failure_burst: 2,
        }
    }

    fn limits(per_second: u32, burst: u32) -> RateLimits {
        RateLimits::from_settings(&settings(per_second, burst)).unwrap()
    }

    fn tokens(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn a_user_gets_its_burst_then_is_refused_with_a_retry_time() {
        let limits = limits(1, 3);
        let remaining: Vec<u32> = (0..3)
            .map(|_| limits.check("alice", Class::Write).unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = limits.check("alice", Class::Write).unwrap_err();
        assert_eq!(refused.retry_after_secs, Some(1));
        assert_eq!(refused.remaining, 0);
        assert_eq!((refused.quota, refused.window_secs), (3, 3));
    }

    #[test]
    fn reads_and_writes_and_users_have_separate_buckets() {
        let limits = limits(1, 1);
        assert!(limits.check("alice", Class::Read).is_ok());
        assert!(limits.check("alice", Class::Read).is_err());
        assert!(limits.check("alice", Class::Write).is_ok());
        assert!(limits.check("bob", Class::Read).is_ok());
    }

    #[test]
    fn charging_more_takes_all_or_nothing_and_never_more_than_the_bucket() {
        let limits = limits(1, 10);
        limits.check("alice", Class::Write).unwrap();
        let status = limits
            .charge_more("alice", Class::Write, tokens(6))
            .unwrap();
        assert_eq!(status.remaining, 3);
        let Err(Refusal::Empty(refused)) = limits.charge_more("alice", Class::Write, tokens(4))
        else {
            panic!("4 more than the 3 left");
        };
        // The retry needs the 4 and the one its authentication takes: 2 s at 1/s.
        assert_eq!(refused.retry_after_secs, Some(2));
        assert_eq!(
            limits.check("alice", Class::Write).unwrap().remaining,
            2,
            "the refused charge took nothing"
        );
        assert_eq!(
            limits.charge_more("bob", Class::Write, tokens(11)),
            Err(Refusal::NeverEnough { bucket: 10 })
        );
    }

    #[test]
    fn buckets_that_filled_up_again_are_evicted() {
        let limits = limits(1000, 1);
        limits.check("alice", Class::Read).unwrap();
        limits.check("alice", Class::Write).unwrap();
        limits.admit_lookup("192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(limits.buckets_held(), 3);
        // 1 ms refills a write or read bucket; the failure bucket takes a second a token.
        std::thread::sleep(Duration::from_millis(20));
        limits.evict_idle();
        assert_eq!(
            limits.buckets_held(),
            1,
            "the failing address is still held"
        );
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
            ..settings(1, 1)
        };
        assert!(RateLimits::from_settings(&settings).is_none());
    }
}
