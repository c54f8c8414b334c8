//! The Postgres and Redis servers an app's configuration points at:
//! addresses in component variables (spin.toml's `database_url =
//! "{{ database_url }}"`, checked against the component's
//! `allowed_outbound_hosts`), Redis key-value stores of the runtime config,
//! and nexa.toml's shared rate limits. `nexa doctor` reaches them from the
//! operator's shell; `/readyz` reaches them from the host.

use crate::app::AppFiles;
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::capabilities::key_value::KeyValueStoreSection;
use crate::capabilities::postgres::address::parse_address;
use crate::capabilities::variables::{Template, VariablesState, providers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Postgres,
    Redis,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Postgres => "postgres",
            BackendKind::Redis => "redis",
        }
    }
}

/// One server, however many parts of the configuration use it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: BackendKind,
    /// As configured: may hold a password; never print it, print [`Self::target`].
    address: String,
    /// The address with any password replaced by `***`.
    pub target: String,
    /// What in the configuration points at it.
    pub used_by: Vec<String>,
    /// Found while reading the configuration: reasons it cannot work even
    /// when it answers (a component not granted its own database).
    pub problems: Vec<String>,
}

impl Backend {
    /// A backend at `address` that nothing in a configuration named.
    pub fn at(kind: BackendKind, address: &str) -> Self {
        Self {
            kind,
            address: address.to_string(),
            target: redact(address),
            used_by: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Connects once (authenticating) and runs `SELECT 1` or `PING`; `Err`
    /// is the cause, in words. The caller bounds the time.
    pub async fn reach(&self) -> Result<(), String> {
        match self.kind {
            BackendKind::Postgres => {
                use sqlx::{Connection, Executor};
                let address =
                    parse_address(&self.address).map_err(|e| format!("bad address: {e}"))?;
                let mut connection = sqlx::postgres::PgConnection::connect_with(&address.options)
                    .await
                    .map_err(|e| cause(&e))?;
                connection
                    .execute("SELECT 1")
                    .await
                    .map_err(|e| cause(&e))?;
                let _ = connection.close().await;
                Ok(())
            }
            BackendKind::Redis => {
                let client = redis::Client::open(self.address.as_str()).map_err(|e| cause(&e))?;
                let mut connection = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| cause(&e))?;
                let pong: String = redis::cmd("PING")
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| cause(&e))?;
                if pong != "PONG" {
                    return Err(format!("PING answered {pong:?}"));
                }
                Ok(())
            }
        }
    }
}

/// Every backend the files configure, one per address, in the order found.
pub fn backends_of(files: &AppFiles) -> anyhow::Result<Vec<Backend>> {
    let manifest = &files.manifest.manifest;
    let variables = VariablesState::new(manifest.variables.clone(), providers(&files.runtime)?);
    let mut backends = Vec::new();
    for (id, component) in &manifest.component {
        let allowed =
            AllowedHosts::parse(&component.allowed_outbound_hosts, &variables).map_err(|e| {
                anyhow::anyhow!("{}: component {id}: {e}", files.manifest.path.display())
            })?;
        for (name, text) in &component.variables {
            let value = Template::parse(text)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t.render(|v| variables.resolve(v))
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: component {id} variable {name}: {e}",
                        files.manifest.path.display()
                    )
                })?;
            let value = value.trim();
            let used_by = format!("component {id} ({name})");
            let (index, host, port) = if is_postgres(value) {
                let index = add_use(&mut backends, BackendKind::Postgres, value, used_by);
                let Ok(address) = parse_address(value) else {
                    continue;
                };
                (index, address.host, Some(address.port))
            } else if is_redis(value) {
                let index = add_use(&mut backends, BackendKind::Redis, value, used_by);
                let Ok(url) = url::Url::parse(value) else {
                    continue;
                };
                (
                    index,
                    url.host_str().unwrap_or_default().to_string(),
                    url.port(),
                )
            } else {
                continue;
            };
            let scheme = backends[index].kind.as_str();
            if !allowed.allows(scheme, &host, port) {
                backends[index].problems.push(format!(
                    "allowed_outbound_hosts of component {id} does not permit {scheme}://{host}:{}",
                    port.map(|p| p.to_string()).unwrap_or_default()
                ));
            }
        }
    }
    for (label, store) in &files.runtime.config.key_value_store {
        if let KeyValueStoreSection::Redis { url } = store {
            add_use(
                &mut backends,
                BackendKind::Redis,
                url,
                format!("key_value_store.{label}"),
            );
        }
    }
    let rate_limit = &files.host.rate_limit;
    if rate_limit.enabled
        && let Some(url) = &rate_limit.redis_url
    {
        add_use(
            &mut backends,
            BackendKind::Redis,
            url,
            "nexa.toml [rate_limit] redis_url".to_string(),
        );
    }
    Ok(backends)
}

/// Adds `used_by` to the backend at `address`, creating it; its index.
fn add_use(
    backends: &mut Vec<Backend>,
    kind: BackendKind,
    address: &str,
    used_by: String,
) -> usize {
    match backends
        .iter()
        .position(|b| b.kind == kind && b.address == address)
    {
        Some(i) => {
            backends[i].used_by.push(used_by);
            i
        }
        None => {
            let mut backend = Backend::at(kind, address);
            backend.used_by.push(used_by);
            backends.push(backend);
            backends.len() - 1
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; the
/// key=value form's `password=` likewise.
pub fn redact(address: &str) -> String {
    if let Ok(mut url) = url::Url::parse(address)
        && url.password().is_some()
    {
        let _ = url.set_password(Some("***"));
        return url.to_string();
    }
    address
        .split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_postgres(value: &str) -> bool {
    value.starts_with("postgres://")
        || value.starts_with("postgresql://")
        || (value.contains("host=") && parse_address(value).is_ok())
}

fn is_redis(value: &str) -> bool {
    value.starts_with("redis://") || value.starts_with("rediss://")
}

/// The cause of a failed connection, in words: `connection refused`,
/// `DNS: ...`, `authentication failed: ...`, `timed out`, or the error
/// itself, found by walking the error's sources to the one that knows.
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    let mut io_kind = None;
    let mut current: &(dyn std::error::Error + 'static) = error;
    loop {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        match source {
            Some(next) => {
                chain.push(next.to_string());
                current = next;
                source = next.source();
            }
            None => break,
        }
    }
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    let deepest = chain.last().cloned().unwrap_or_default();
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused)
        || lower.contains("connection refused")
    {
        "connection refused".to_string()
    } else if lower.contains("lookup address")
        || lower.contains("dns error")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        format!("DNS: cannot resolve the host ({deepest})")
    } else if lower.contains("authentication failed")
        || lower.contains("noauth")
        || lower.contains("wrongpass")
        || lower.contains("invalid password")
        || lower.contains("invalid username-password")
    {
        format!("authentication failed: {deepest}")
    } else if io_kind == Some(std::io::ErrorKind::TimedOut) || lower.contains("timed out") {
        "timed out".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_output() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app?sslmode=disable"),
            "postgres://app:***@db:5432/app?sslmode=disable"
        );
        assert_eq!(
            redact("host=db user=app password=s3cret dbname=app"),
            "host=db user=app password=*** dbname=app"
        );
        assert_eq!(redact("redis://:pw@cache:6379"), "redis://:***@cache:6379");
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn causes_are_read_from_the_error_chain() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(cause(&refused), "connection refused");
        let dns = std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        );
        assert!(cause(&dns).starts_with("DNS: "), "{}", cause(&dns));
        let timeout = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(cause(&timeout), "timed out");
        let other = std::io::Error::other("something else");
        assert_eq!(cause(&other), "something else");
    }
}
