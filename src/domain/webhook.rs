//! Webhooks: what a subscription asks for, where deliveries may go (no open relay), how a
//! delivery is signed (Standard Webhooks), and when a failed one is tried again.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{Map, Value};
use sha2::Sha256;
use url::Url;

use super::{EventType, FieldError};

/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// A webhook's signing secret, `whsec_<base64>`, as Standard Webhooks spells it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_BYTES]>().to_vec())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form shown once, at creation and rotation.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The `webhook-signature` header: one signature per secret in use (the new one first while
/// a rotated-out one is still honoured), space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a delivery may connect to `address`: never loopback, private, link-local (cloud
/// metadata services live there), CGNAT, documentation, multicast or unspecified ones,
/// unless private networks are allowed.
pub fn address_allowed(address: IpAddr, allow_private_networks: bool) -> bool {
    if allow_private_networks {
        return true;
    }
    let address = match address {
        // An IPv4 address written as IPv6 is judged as IPv4.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    !forbidden_networks()
        .iter()
        .any(|network| network.contains(&address))
}

fn forbidden_networks() -> Vec<IpNet> {
    let v4 = [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ]
    .into_iter()
    .map(|n| IpNet::V4(n.parse::<Ipv4Net>().expect("a valid network")));
    let v6 = [
        "::/128",
        "::1/128",
        // NAT64 and 6to4 embed IPv4 addresses that could be private.
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "100::/64",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ]
    .into_iter()
    .map(|n| IpNet::V6(n.parse::<Ipv6Net>().expect("a valid network")));
    v4.chain(v6).collect()
}

/// A webhook URL as given: absolute `https` (or `http` with private networks allowed),
/// a host, no credentials, and, when its host is an address, an allowed one. A host name is
/// checked when it is resolved, at every delivery.
pub fn parse_url(text: &str, allow_private_networks: bool) -> Result<Url, FieldError> {
    let invalid = |message: String| FieldError::invalid_value("url", message);
    if text.chars().count() > MAX_URL_CHARS {
        return Err(invalid(format!(
            "'url' must be at most {MAX_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(text).map_err(|error| invalid(format!("'url' is not a URL: {error}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private_networks => {}
        "http" => {
            return Err(invalid(
                "'url' must be https (webhooks.allow_private_networks allows http)".into(),
            ));
        }
        other => return Err(invalid(format!("'url' must be https, not {other}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "'url' must not carry credentials; verify deliveries by their signature".into(),
        ));
    }
    let refused = || {
        invalid(
            "'url' points at a loopback, private, link-local or otherwise internal address \
             (webhooks.allow_private_networks allows it)"
                .into(),
        )
    };
    match url.host() {
        None => return Err(invalid("'url' must name a host".into())),
        Some(url::Host::Ipv4(v4)) if !address_allowed(IpAddr::V4(v4), allow_private_networks) => {
            return Err(refused());
        }
        Some(url::Host::Ipv6(v6)) if !address_allowed(IpAddr::V6(v6), allow_private_networks) => {
            return Err(refused());
        }
        Some(url::Host::Domain(name))
            if !allow_private_networks
                && (name.eq_ignore_ascii_case("localhost")
                    || name.to_ascii_lowercase().ends_with(".localhost")) =>
        {
            return Err(refused());
        }
        Some(_) => {}
    }
    Ok(url)
}

/// The delay before attempt `attempts + 1`, after `attempts` failed ones: `initial`,
/// doubling each time (capped at a day).
pub fn retry_delay(initial: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    initial
        .saturating_mul(1 << doublings)
        .min(Duration::from_secs(86_400))
}

/// A webhook being created (`url` and `events` required) or changed.
#[derive(Debug, Default)]
pub struct WebhookChange {
    pub url: Option<Url>,
    pub events: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    /// Issue a new secret; the old one keeps signing alongside for a while.
    pub rotate_secret: bool,
}

impl WebhookChange {
    pub fn from_json(
        body: Map<String, Value>,
        creating: bool,
        allow_private_networks: bool,
    ) -> Result<Self, Vec<FieldError>> {
        let mut change = Self::default();
        let mut errors = Vec::new();
        for (key, value) in body {
            match (key.as_str(), value) {
                ("url", Value::String(text)) => match parse_url(&text, allow_private_networks) {
                    Ok(url) => change.url = Some(url),
                    Err(error) => errors.push(error),
                },
                ("url", _) => errors.push(FieldError::invalid_type("url", "a string")),
                ("events", Value::Array(names)) if !names.is_empty() => {
                    let mut events = Vec::new();
                    for name in names {
                        match name.as_str().map(str::parse::<EventType>) {
                            Some(Ok(event)) if !events.contains(&event) => events.push(event),
                            Some(Ok(_)) => {}
                            _ => errors.push(FieldError::new(
                                "events",
                                "invalid_enum_value",
                                format!(
                                    "'events' holds {name}, which is no event type; known: {}",
                                    EventType::NAMES.join(", ")
                                ),
                            )),
                        }
                    }
                    change.events = Some(events);
                }
                ("events", _) => errors.push(FieldError::invalid_value(
                    "events",
                    "'events' must be a non-empty array of event types",
                )),
                ("enabled", Value::Bool(enabled)) => change.enabled = Some(enabled),
                ("enabled", _) => errors.push(FieldError::invalid_type("enabled", "a boolean")),
                ("rotate_secret", Value::Bool(rotate)) if !creating => {
                    change.rotate_secret = rotate
                }
                ("rotate_secret", Value::Bool(_)) => errors.push(FieldError::invalid_value(
                    "rotate_secret",
                    "a new webhook gets its first secret; rotate it later with PATCH",
                )),
                ("rotate_secret", _) => {
                    errors.push(FieldError::invalid_type("rotate_secret", "a boolean"))
                }
                (other, _) => errors.push(FieldError::unknown_field(
                    other,
                    &["url", "events", "enabled", "rotate_secret"],
                )),
            }
        }
        if creating {
            for (field, missing) in [
                ("url", change.url.is_none()),
                ("events", change.events.is_none()),
            ] {
                if missing && !errors.iter().any(|e| e.field == field) {
                    errors.push(FieldError::required(field));
                }
            }
        }
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let secret =
            WebhookSecret::from_bytes(STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let exposed = secret.expose();
        assert!(exposed.starts_with("whsec_"));
    }

    #[test]
    fn internal_addresses_are_refused_unless_private_networks_are_allowed() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            let address: IpAddr = internal.parse().unwrap();
            assert!(!address_allowed(address, false), "{internal}");
            assert!(address_allowed(address, true), "{internal}");
        }
        for public in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "1.1.1.1",
        ] {
            assert!(address_allowed(public.parse().unwrap(), false), "{public}");
        }
    }

    #[test]
    fn a_url_must_be_https_with_a_public_host() {
        assert!(parse_url("https://hooks.example.org/labcat", false).is_ok());
        for bad in [
            "http://hooks.example.org/",
            "ftp://example.org/",
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/",
            "https://user:pw@example.org/",
            "not a url",
        ] {
            assert!(parse_url(bad, false).is_err(), "{bad}");
        }
        assert!(parse_url("http://127.0.0.1:9000/hook", true).is_ok());
    }

    #[test]
    fn retries_double_from_the_initial_delay() {
        let initial = Duration::from_secs(10);
        let delays: Vec<u64> = (1..=4).map(|n| retry_delay(initial, n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80]);
        assert_eq!(retry_delay(initial, 200), Duration::from_secs(86_400));
    }

    #[test]
    fn a_new_webhook_needs_a_url_and_events() {
        let errors = WebhookChange::from_json(Map::new(), true, false).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "events"]);
        let body = serde_json::json!({"url": "https://example.org/h", "events": ["entry.nope"]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let errors = WebhookChange::from_json(body, true, false).unwrap_err();
        assert_eq!(errors[0].field, "events");
    }
}
