//! The authenticated caller, extracted from `X-API-KEY`, `Authorization: Bearer` or
//! `X-SBG-Auth-Token`, or from the web UI's session cookie (`auth::session`). Every failure is the same 401, so a caller cannot tell a revoked
//! key from one that never existed.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{KeyHash, session};
use crate::db;
use crate::domain::{Access, Scope};
use crate::error::ApiError;
use crate::rate_limit::{Class, RateLimitStatus};
use crate::startup::AppState;

#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: Uuid,
    pub user_id: String,
    pub scopes: Vec<Scope>,
    /// When the key stops working; a key it mints may not outlive it.
    pub expires_at: Option<DateTime<Utc>>,
    /// The projects the key is limited to; `None` reaches every project of its user.
    pub projects: Option<Vec<Uuid>>,
}

impl Principal {
    /// What this request may reach, for the statements to check.
    pub fn access(&self) -> Access<'_> {
        Access {
            user_id: &self.user_id,
            projects: self.projects.as_deref(),
        }
    }

    /// 403 unless one of the key's scopes grants `scope` (`write` grants `read`). Every
    /// route's scope check is this one.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.iter().any(|held| held.grants(scope)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope))
        }
    }
}

/// The one key the request presents, from `X-API-KEY`, `Authorization: Bearer` or
/// `X-SBG-Auth-Token`, each of which may be repeated. The same key sent more than once is
/// one key; two different ones are refused (400), since which the caller meant is unknown.
/// `None` (a 401) when there is none, or a credential header is not readable text.
fn presented_secret(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut secrets = Vec::new();
    for name in ["x-api-key", "authorization", "x-sbg-auth-token"] {
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                return Ok(None);
            };
            let value = value.trim();
            let secret = if name == "authorization" {
                // Other schemes (Basic, …) carry no labcat key.
                match value.split_once(' ') {
                    Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
                    _ => continue,
                }
            } else {
                value
            };
            secrets.push(secret);
        }
    }
    match secrets.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|other| other == first) => Ok(Some(first)),
        Some(_) => Err(ApiError::AmbiguousCredentials),
    }
}

/// What a request authenticates with: an API key, or the web UI's session cookie (which
/// stands for the key it was signed in with).
#[derive(Debug, Clone, Copy)]
pub enum Credential {
    Key(KeyHash),
    Session(KeyHash),
}

/// Finds the caller (in the short-lived key cache, else in the database), then charges the
/// request to the user's rate limit. Without a key header, the session cookie is the
/// credential, and a write with it must come from labcat's own pages.
async fn authenticate(request: HttpRequest) -> Result<Principal, ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered at startup");
    let unauthorized = || {
        state.metrics.auth_failure();
        ApiError::Unauthorized
    };
    let credential = match presented_secret(request.headers())? {
        Some(secret) => Credential::Key(KeyHash::of_presented(secret).ok_or_else(unauthorized)?),
        None => {
            let token = session::presented_token(request.headers()).ok_or_else(unauthorized)?;
            session::check_cross_site(&request)?;
            Credential::Session(session::hash_of_presented(token).ok_or_else(unauthorized)?)
        }
    };
    let principal = resolve(&request, state, credential).await?;
    state.key_usage.record(principal.key_id);
    // The request log reads who made the request from here.
    request.extensions_mut().insert(principal.clone());
    if let Some(limits) = &state.rate_limits {
        match limits.check(&principal.user_id, Class::of_request(&request)) {
            // `rate_limit::headers` puts the user's standing on the response from here.
            Ok(status) => {
                request.extensions_mut().insert(status);
            }
            Err(status) => return Err(refuse(&request, state, status)),
        }
    }
    Ok(principal)
}

/// The caller `credential` stands for, from the key cache or the database: a key or a
/// session that is not revoked or expired (else the same 401). Lookups that miss the cache
/// are bounded per client address like every failed authentication.
pub async fn resolve(
    request: &HttpRequest,
    state: &AppState,
    credential: Credential,
) -> Result<Principal, ApiError> {
    let hash = match credential {
        Credential::Key(hash) | Credential::Session(hash) => hash,
    };
    if let Some(principal) = state.key_cache.get(&hash) {
        return Ok(principal);
    }
    // Only the TCP peer: forwarding headers are the client's to invent.
    let address = request
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
    if let Some(limits) = &state.rate_limits
        && let Err(status) = limits.admit_lookup(address)
    {
        return Err(refuse(request, state, status));
    }
    let found = match credential {
        Credential::Key(_) => db::api_keys::find_active_by_hash(&state.pool, hash.as_bytes())
            .await
            .map(|key| key.map(|key| (key.expires_at, key))),
        // The session ends with its key or at its own end, whichever comes first.
        Credential::Session(_) => db::ui_sessions::find_active(&state.pool, hash.as_bytes())
            .await
            .map(|found| {
                found.map(|(key, session_ends)| {
                    let ends = key.expires_at.map_or(session_ends, |k| k.min(session_ends));
                    (Some(ends), key)
                })
            }),
    };
    // Only a credential the database does not know is a failure that costs a token.
    if let Some(limits) = &state.rate_limits
        && !matches!(found, Ok(None))
    {
        limits.forgive_lookup(address);
    }
    let Some((cache_until, key)) = found? else {
        state.metrics.auth_failure();
        return Err(ApiError::Unauthorized);
    };
    let principal = Principal {
        key_id: key.key_id,
        user_id: key.user_id,
        scopes: key.scopes.iter().filter_map(|s| s.parse().ok()).collect(),
        expires_at: key.expires_at,
        projects: key.projects,
    };
    state.key_cache.insert(hash, principal.clone(), cache_until);
    Ok(principal)
}

/// A 429 for `status`, which the response's RateLimit headers will tell.
fn refuse(request: &HttpRequest, state: &AppState, status: RateLimitStatus) -> ApiError {
    state.metrics.rate_limited(status.policy);
    request.extensions_mut().insert(status.clone());
    ApiError::RateLimited(status)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A middleware may have authenticated this request already.
        if let Some(principal) = request.extensions().get::<Principal>() {
            let principal = principal.clone();
            return Box::pin(async move { Ok(principal) });
        }
        Box::pin(authenticate(request.clone()))
    }
}
