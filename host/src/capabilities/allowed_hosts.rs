//! `allowed_outbound_hosts`: which `scheme://host:port` a component may reach
//! through Postgres, Redis or outbound HTTP. Entries are checked on every
//! connection a guest opens.
//!
//! Entry syntax (as Spin's): scheme `*` or a name; host `*`, `*.domain`
//! (subdomains only) or a literal; port `*`, a number, or `a..b` (end
//! exclusive); no port means the scheme's well-known port. `{{ var }}`
//! templates are resolved from the app variables at load time; an entry that
//! renders empty is skipped.

use crate::capabilities::variables::{Template, VariablesState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed_outbound_hosts entry {entry:?}: {message}")]
pub struct AllowedHostError {
    pub entry: String,
    pub message: String,
}

/// The well-known port of a scheme, used when an entry or an address has none.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" | "postgresql" => Some(5432),
        "redis" => Some(6379),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain, stored as `.example.com`.
    Subdomains(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// One component's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// Parses a component's entries, resolving templates from app variables.
    pub fn parse(entries: &[String], variables: &VariablesState) -> Result<Self, AllowedHostError> {
        let mut parsed = Vec::new();
        for entry in entries {
            let error = |message: String| AllowedHostError {
                entry: entry.clone(),
                message,
            };
            let rendered = Template::parse(entry)
                .map_err(|e| error(e.to_string()))?
                .render(|name| variables.resolve(name))
                .map_err(|e| error(e.to_string()))?;
            let rendered = rendered.trim();
            if rendered.is_empty() || rendered == "http://" || rendered == "https://" {
                continue;
            }
            parsed.push(parse_entry(rendered).map_err(error)?);
        }
        Ok(Self(parsed))
    }

    /// Whether `scheme://host:port` may be reached.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Some(port) = port.or_else(|| default_port(scheme)) else {
            return false;
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.0.iter().any(|allowed| {
            let scheme_ok = allowed
                .scheme
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(scheme));
            let host_ok = match &allowed.host {
                HostPattern::Any => true,
                HostPattern::Subdomains(suffix) => {
                    host.ends_with(suffix.as_str()) && host.len() > suffix.len()
                }
                HostPattern::Exact(exact) => *exact == host,
            };
            let port_ok = match allowed.port {
                PortPattern::Any => true,
                PortPattern::Range(start, end) => port >= start && port < end,
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost, String> {
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| "expected scheme://host[:port]".to_string())?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        return Err("must not contain a path".to_string());
    }
    let (host, port) = split_host_port(rest);
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    let scheme = if scheme == "*" {
        None
    } else {
        Some(scheme.to_ascii_lowercase())
    };
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        HostPattern::Subdomains(format!(".{}", domain.to_ascii_lowercase()))
    } else if host.contains('*') {
        return Err("a host wildcard must be `*` or `*.domain`".to_string());
    } else {
        HostPattern::Exact(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
        )
    };
    let port = match port {
        Some("*") => PortPattern::Any,
        Some(port) => match port.split_once("..") {
            Some((start, end)) => {
                let start = parse_port(start)?;
                let end = parse_port(end)?;
                if start >= end {
                    return Err(format!("empty port range {port}"));
                }
                PortPattern::Range(start, end)
            }
            None => {
                let port = parse_port(port)?;
                PortPattern::Range(port, port.saturating_add(1).max(port))
            }
        },
        None => match scheme.as_deref().and_then(default_port) {
            Some(port) => PortPattern::Range(port, port + 1),
            None => return Err("needs a port: the scheme has no well-known one".to_string()),
        },
    };
    Ok(AllowedHost { scheme, host, port })
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse().map_err(|_| format!("{text:?} is not a port"))
}

/// An entry's scheme, host and port as written (wildcards kept), or `None`
/// without `scheme://`: what `nexa graph` and `nexa check-config` show of it.
pub fn entry_parts(entry: &str) -> Option<(&str, &str, Option<&str>)> {
    let (scheme, rest) = entry.split_once("://")?;
    let (host, port) = split_host_port(rest.trim_end_matches('/'));
    Some((scheme, host, port))
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (host, after.strip_prefix(':'));
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::manifest::VariableDecl;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let variables = VariablesState::new(
            BTreeMap::from([
                (
                    "db_host".to_string(),
                    VariableDecl {
                        default: Some("db.internal".into()),
                        ..Default::default()
                    },
                ),
                (
                    "empty".to_string(),
                    VariableDecl {
                        default: Some(String::new()),
                        ..Default::default()
                    },
                ),
            ]),
            vec![],
        );
        AllowedHosts::parse(
            &entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            &variables,
        )
        .unwrap()
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let h = hosts(&[
            "postgres://localhost",
            "redis://cache:6380",
            "https://api.example.com",
        ]);
        assert!(h.allows("postgres", "localhost", Some(5432)));
        assert!(h.allows("postgres", "LOCALHOST", None));
        assert!(!h.allows("postgres", "localhost", Some(5433)));
        assert!(h.allows("redis", "cache", Some(6380)));
        assert!(!h.allows("redis", "cache", None));
        assert!(h.allows("https", "api.example.com", None));
        assert!(!h.allows("http", "api.example.com", None));
    }

    #[test]
    fn wildcards_and_ranges() {
        let h = hosts(&["*://*.example.com:*", "http://127.0.0.1:8000..8002"]);
        assert!(h.allows("redis", "a.example.com", Some(1)));
        assert!(!h.allows("redis", "example.com", Some(1)));
        assert!(h.allows("http", "127.0.0.1", Some(8001)));
        assert!(!h.allows("http", "127.0.0.1", Some(8002)));
    }

    #[test]
    fn templates_resolve_and_empty_entries_are_skipped() {
        let h = hosts(&["postgres://{{ db_host }}:5432", "{{ empty }}"]);
        assert!(h.allows("postgres", "db.internal", Some(5432)));
        assert!(!h.allows("postgres", "other", Some(5432)));
    }

    #[test]
    fn bad_entries_are_refused() {
        let variables = VariablesState::new(BTreeMap::new(), vec![]);
        for entry in [
            "localhost",
            "foo://host",
            "http://ho*st",
            "http://host/path",
            "http://host:x",
        ] {
            assert!(
                AllowedHosts::parse(&[entry.to_string()], &variables).is_err(),
                "{entry}"
            );
        }
    }
}
