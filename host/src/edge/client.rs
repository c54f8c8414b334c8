//! Who sent a request, and over which scheme. The socket peer, unless that
//! peer is a configured trusted proxy: then `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`/`-Proto` say it, read from the right so that a client
//! cannot plant an address in front of what the proxies appended. The result
//! keys rate limits and becomes the component's `spin-client-addr` and the
//! scheme of its `spin-full-url`.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

/// The scheme the client used to reach the (outermost) edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text.trim().trim_matches('"').to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

/// The client of one request, as far as the host can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: SocketAddr,
    pub scheme: Scheme,
    /// Whether the scheme was vouched for by a trusted proxy (HSTS is sent then).
    pub via_trusted_proxy: bool,
}

/// One trusted proxy: an address or a network, e.g. `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

impl<'de> Deserialize<'de> for TrustedProxy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(TrustedProxy)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an IP address or network (e.g. 10.0.0.0/8)"
                ))
            })
    }
}

/// Decides who the client is from the peer and, behind trusted proxies, the
/// forwarding headers.
#[derive(Debug, Clone, Default)]
pub struct ClientResolver {
    trusted: Vec<TrustedProxy>,
    /// The scheme of the configured public URL, if any: what clients use.
    public_scheme: Option<Scheme>,
}

impl ClientResolver {
    pub fn new(trusted: Vec<TrustedProxy>, public_url: Option<&url::Url>) -> Self {
        Self {
            trusted,
            public_scheme: public_url.and_then(|url| Scheme::parse(url.scheme())),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|proxy| proxy.0.contains(&ip))
    }

    pub fn resolve(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        let default_scheme = self.public_scheme.unwrap_or(Scheme::Http);
        if !self.is_trusted(peer.ip()) {
            return Client {
                addr: peer,
                scheme: default_scheme,
                via_trusted_proxy: false,
            };
        }
        let hops = forwarded_hops(headers);
        // From the nearest hop outwards: the first address not of a trusted
        // proxy is the client; the scheme is what the outermost trusted proxy
        // was reached with.
        let mut client = Client {
            addr: peer,
            scheme: default_scheme,
            via_trusted_proxy: true,
        };
        for hop in hops.iter().rev() {
            if let Some(proto) = hop.proto {
                client.scheme = proto;
            }
            match hop.addr {
                Some(addr) => {
                    client.addr = addr;
                    if !self.is_trusted(addr.ip()) {
                        break;
                    }
                }
                // An obfuscated or unknown hop: nothing further can be trusted.
                None => break,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One proxy hop, as the forwarding headers describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    addr: Option<SocketAddr>,
    proto: Option<Scheme>,
}

/// The hops in order (client first): `Forwarded` when present, else
/// `X-Forwarded-For` with `X-Forwarded-Proto` applied to the last hop.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    let forwarded: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                let mut hop = Hop {
                    addr: None,
                    proto: None,
                };
                for pair in element.split(';') {
                    let Some((key, value)) = pair.split_once('=') else {
                        continue;
                    };
                    match key.trim().to_ascii_lowercase().as_str() {
                        "for" => hop.addr = parse_node(value),
                        "proto" => hop.proto = Scheme::parse(value),
                        _ => {}
                    }
                }
                hop
            })
            .collect();
    }
    let mut hops: Vec<Hop> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|node| Hop {
            addr: parse_node(node),
            proto: None,
        })
        .collect();
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next_back())
        .and_then(Scheme::parse);
    if let Some(last) = hops.last_mut() {
        last.proto = proto;
    } else if proto.is_some() {
        // Only a scheme: the peer itself is the client's proxy.
        hops.push(Hop { addr: None, proto });
    }
    hops
}

/// `1.2.3.4`, `1.2.3.4:5678`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<SocketAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(trusted: &[&str]) -> ClientResolver {
        let trusted = trusted
            .iter()
            .map(|t| serde_json::from_value(serde_json::json!(t)).unwrap())
            .collect();
        ClientResolver::new(trusted, None)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    const PROXY: &str = "10.0.0.5:40000";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let client = resolver(&["10.0.0.0/8"]).resolve(
            "203.0.113.7:5000".parse().unwrap(),
            &headers(&[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-proto", "https"),
            ]),
        );
        assert_eq!(client.addr, "203.0.113.7:5000".parse().unwrap());
        assert_eq!(client.scheme, Scheme::Http);
        assert!(!client.via_trusted_proxy);
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
        // The client planted 6.6.6.6; the proxy appended what it saw.
        let client = resolver(&["10.0.0.0/8"]).resolve(
            PROXY.parse().unwrap(),
            &headers(&[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.9"),
                ("x-forwarded-proto", "https"),
            ]),
        );
        assert_eq!(client.addr.ip(), "198.51.100.9".parse::<IpAddr>().unwrap());
        assert_eq!(client.scheme, Scheme::Https);
        assert!(client.via_trusted_proxy);
    }

    #[test]
    fn forwarded_is_read_with_ports_ipv6_and_proto() {
        let client = resolver(&["10.0.0.5"]).resolve(
            PROXY.parse().unwrap(),
            &headers(&[(
                "forwarded",
                "for=6.6.6.6;proto=http, for=\"[2001:db8::1]:4711\";proto=https",
            )]),
        );
        assert_eq!(client.addr, "[2001:db8::1]:4711".parse().unwrap());
        assert_eq!(client.scheme, Scheme::Https);
        let hidden = resolver(&["10.0.0.5"]).resolve(
            PROXY.parse().unwrap(),
            &headers(&[("forwarded", "for=_hidden")]),
        );
        assert_eq!(hidden.addr, PROXY.parse().unwrap());
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked() {
        let client = resolver(&["10.0.0.0/8", "192.168.0.0/16"]).resolve(
            PROXY.parse().unwrap(),
            &headers(&[("x-forwarded-for", "198.51.100.9, 192.168.1.1")]),
        );
        assert_eq!(client.addr.ip(), "198.51.100.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_public_https_url_sets_the_scheme() {
        let url = url::Url::parse("https://api.example.com").unwrap();
        let client = ClientResolver::new(Vec::new(), Some(&url))
            .resolve("127.0.0.1:1".parse().unwrap(), &HeaderMap::new());
        assert_eq!(client.scheme, Scheme::Https);
        assert!(!client.via_trusted_proxy);
    }

    #[test]
    fn bad_proxy_entries_are_refused() {
        let bad: Result<TrustedProxy, _> = serde_json::from_value(serde_json::json!("nope"));
        assert!(bad.unwrap_err().to_string().contains("nope"));
    }
}
