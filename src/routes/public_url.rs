//! The root of the absolute URLs labcat hands out (`Link` headers, `/v2` `href`s), which
//! clients follow with their keys. It is never taken from what an arbitrary client says
//! about the server: the configured `server.public_base_url` if any; else the forwarding
//! headers (`Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`), but only from a peer in
//! `server.trusted_proxies`; else the connection's own `Host`. The scheme is only ever
//! `http` or `https`, and a host only a host name or address with an optional port.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::{Uri, header};
use actix_web::{HttpRequest, web};
use anyhow::Context;
use ipnet::IpNet;

use crate::startup::AppState;

#[derive(Debug, Clone, Default)]
pub struct PublicUrls {
    /// `server.public_base_url`, without a trailing slash.
    configured: Option<String>,
    trusted_proxies: Vec<IpNet>,
}

impl PublicUrls {
    /// From `server.public_base_url` (empty: none) and `server.trusted_proxies`; the error
    /// names the setting that is wrong.
    pub fn new(public_base_url: &str, trusted_proxies: &[String]) -> anyhow::Result<Self> {
        let configured = match public_base_url.trim() {
            "" => None,
            url => Some(parse_base_url(url).with_context(|| {
                format!("invalid configuration: server.public_base_url '{url}'")
            })?),
        };
        let trusted_proxies = trusted_proxies
            .iter()
            .map(|entry| {
                parse_network(entry.trim()).with_context(|| {
                    format!(
                        "invalid configuration: server.trusted_proxies entry '{entry}' is not \
                         an IP address or a CIDR block (e.g. 10.0.0.0/8)"
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            configured,
            trusted_proxies,
        })
    }

    /// `scheme://authority[/prefix]`, no trailing slash, for the answer to `request`.
    pub fn base_for(&self, request: &HttpRequest) -> String {
        if let Some(configured) = &self.configured {
            return configured.clone();
        }
        let own_scheme = if request.app_config().secure() {
            "https"
        } else {
            "http"
        };
        let own_host = || {
            let host_header = request
                .headers()
                .get(header::HOST)
                .and_then(|value| value.to_str().ok());
            host_header
                .or_else(|| {
                    request
                        .uri()
                        .authority()
                        .map(|authority| authority.as_str())
                })
                .filter(|host| is_authority(host))
                .map_or_else(
                    || request.app_config().local_addr().to_string(),
                    str::to_owned,
                )
        };
        if !self.trusts(request) {
            return format!("{own_scheme}://{}", own_host());
        }
        // actix reads `Forwarded`, then `X-Forwarded-*`, then `Host`.
        let forwarded = request.connection_info();
        let scheme = match forwarded.scheme().to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => own_scheme,
        };
        let host = Some(forwarded.host())
            .filter(|host| is_authority(host))
            .map_or_else(own_host, str::to_owned);
        format!("{scheme}://{host}")
    }

    fn trusts(&self, request: &HttpRequest) -> bool {
        request.peer_addr().is_some_and(|peer| {
            let peer = peer.ip().to_canonical();
            self.trusted_proxies
                .iter()
                .any(|network| network.contains(&peer))
        })
    }
}

/// The root of absolute URLs for the answer to `request` (see the module docs).
pub fn base(request: &HttpRequest) -> String {
    request
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered at startup")
        .public_urls
        .base_for(request)
}

fn parse_base_url(url: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !url.contains(['?', '#']),
        "must not have a query or fragment"
    );
    let uri = Uri::from_str(url).context("is not a URL")?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    anyhow::ensure!(
        scheme == "http" || scheme == "https",
        "must start with http:// or https://"
    );
    let authority = uri
        .authority()
        .map(|authority| authority.as_str())
        .filter(|authority| is_authority(authority))
        .context("must name a host (and optionally a port), with no user name")?;
    let prefix = uri.path().trim_end_matches('/');
    Ok(format!("{scheme}://{authority}{prefix}"))
}

fn parse_network(entry: &str) -> anyhow::Result<IpNet> {
    if entry.contains('/') {
        Ok(IpNet::from_str(entry)?.trunc())
    } else {
        Ok(IpNet::from(IpAddr::from_str(entry)?))
    }
}

/// A host name, IPv4 address or bracketed IPv6 address, with an optional port: nothing
/// that could end a URL in a `Link` header or smuggle in user info or a path.
fn is_authority(text: &str) -> bool {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) => {
                if address.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, port)
            }
            None => return false,
        },
        // The port keeps its ':' so that "host:" (a colon and no port) is refused.
        None => match text.rfind(':') {
            Some(colon) => (Some(&text[..colon]), &text[colon..]),
            None => (Some(text), ""),
        },
    };
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    });
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => port.is_empty(),
    };
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosts_with_optional_ports_are_authorities() {
        for good in [
            "example.org",
            "example.org:8443",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[2001:db8::1]",
            "labcat_web_1",
        ] {
            assert!(is_authority(good), "{good}");
        }
        for bad in [
            "",
            "evil.example/path",
            "user@evil.example",
            "evil.example>; rel=\"x\"",
            "evil.example:",
            "evil.example:80x",
            "[::1",
            "[not-an-address]",
            "a b",
            "evil.example:8080:1",
        ] {
            assert!(!is_authority(bad), "{bad}");
        }
    }

    #[test]
    fn a_base_url_is_http_or_https_with_a_host_and_keeps_its_path_prefix() {
        assert_eq!(
            parse_base_url("https://labcat.example.org/").unwrap(),
            "https://labcat.example.org"
        );
        assert_eq!(
            parse_base_url("HTTP://10.0.0.5:8080/catalogue/").unwrap(),
            "http://10.0.0.5:8080/catalogue"
        );
        for bad in [
            "javascript://evil.example",
            "ftp://example.org",
            "example.org",
            "https://user@example.org",
            "https://example.org/?x=1",
            "https://example.org/#top",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let urls = PublicUrls::new("", &["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert_eq!(urls.trusted_proxies.len(), 2);
        let error = PublicUrls::new("", &["10.0.0.0/33".into()]).unwrap_err();
        assert!(format!("{error:#}").contains("server.trusted_proxies"));
        let error = PublicUrls::new("ftp://x", &[]).unwrap_err();
        assert!(format!("{error:#}").contains("server.public_base_url"));
    }
}
