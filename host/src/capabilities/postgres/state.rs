use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use super::config::PostgresConfig;

/// Run when the guest drops its connection, before it goes back to the pool:
/// an open transaction, cursors, settings, listeners, advisory locks and
/// temporary tables a guest left behind do not leak to the next one. (The
/// first line keeps ROLLBACK's "no transaction in progress" warning quiet;
/// RESET ALL, last, undoes it.)
pub const RESET_SESSION: &str = "SET client_min_messages = error; ROLLBACK; CLOSE ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; RESET ALL;";

/// A parsed connection address: where it points and how to connect.
pub struct PgAddress {
    pub host: String,
    pub port: u16,
    pub options: PgConnectOptions,
}

/// Parses `postgres://user:pw@host:port/db?sslmode=...` or the key=value form
/// (`host=... port=... user=... password=... dbname=... sslmode=...`).
pub fn parse_address(address: &str) -> Result<PgAddress, String> {
    let trimmed = address.trim();
    let options = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        PgConnectOptions::from_str(trimmed)
            .map_err(|e| format!("invalid connection string: {e}"))?
    } else {
        let mut options = PgConnectOptions::new_without_pgpass();
        for pair in trimmed.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("invalid connection string: expected key=value, got {pair:?}")
            })?;
            let value = value.trim_matches('\'');
            options = match key {
                "host" => options.host(value),
                "port" => options.port(
                    value
                        .parse()
                        .map_err(|_| format!("invalid connection string: port {value:?}"))?,
                ),
                "user" => options.username(value),
                "password" => options.password(value),
                "dbname" => options.database(value),
                "application_name" => options.application_name(value),
                "sslmode" => options.ssl_mode(
                    PgSslMode::from_str(value)
                        .map_err(|e| format!("invalid connection string: sslmode: {e}"))?,
                ),
                other => return Err(format!("invalid connection string: unknown key {other:?}")),
            };
        }
        options
    };
    let host = options.get_host().to_string();
    if host.starts_with('/') {
        return Err("Unix sockets are not supported; use a TCP host".to_string());
    }
    Ok(PgAddress {
        port: options.get_port(),
        host,
        options,
    })
}

/// A pool per connection string and (sha256 of the) CA root.
type PoolKey = (String, Option<[u8; 32]>);

/// Connection pools by (address, CA root). Shared by every instance of every
/// component; pools connect lazily, so an unreachable database fails the
/// guest's open within the acquire timeout instead of failing start-up.
pub struct PostgresState {
    config: PostgresConfig,
    pools: Mutex<HashMap<PoolKey, PgPool>>,
}

/// Connections of one pool, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGauge {
    /// `host:port/database`, without credentials.
    pub address: String,
    pub in_use: u32,
    pub idle: u32,
}

impl PostgresState {
    pub fn new(config: PostgresConfig) -> Self {
        Self {
            config,
            pools: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The pool for an address, created on first use.
    pub fn pool(
        &self,
        address: &PgAddress,
        raw: &str,
        ca_root: Option<&str>,
    ) -> Result<PgPool, String> {
        let key = (
            raw.to_string(),
            ca_root.map(|pem| Sha256::digest(pem.as_bytes()).into()),
        );
        let mut pools = self
            .pools
            .lock()
            .map_err(|_| "pool registry poisoned".to_string())?;
        if let Some(pool) = pools.get(&key) {
            return Ok(pool.clone());
        }
        if pools.len() >= self.config.max_pools {
            return Err(format!(
                "too many distinct Postgres addresses (at most {})",
                self.config.max_pools
            ));
        }
        let mut options = address.options.clone();
        if let Some(pem) = ca_root {
            options = options.ssl_root_cert_from_pem(pem.as_bytes().to_vec());
        }
        let pool = PgPoolOptions::new()
            .max_connections(self.config.max_connections)
            .acquire_timeout(self.config.acquire_timeout)
            .idle_timeout(self.config.idle_timeout)
            .max_lifetime(self.config.max_lifetime)
            // A connection is reset and pinged when the guest releases it; a
            // second ping on acquire would only add a round trip per request.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        pools.insert(key, pool.clone());
        Ok(pool)
    }

    /// In-use and idle connections of every pool.
    pub fn gauges(&self) -> Vec<PoolGauge> {
        let Ok(pools) = self.pools.lock() else {
            return Vec::new();
        };
        pools
            .values()
            .map(|pool| {
                let options = pool.connect_options();
                let size = pool.size();
                let idle = pool.num_idle() as u32;
                PoolGauge {
                    address: format!(
                        "{}:{}/{}",
                        options.get_host(),
                        options.get_port(),
                        options.get_database().unwrap_or_default()
                    ),
                    in_use: size.saturating_sub(idle),
                    idle,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_in_both_forms() {
        let url = parse_address("postgres://u:p@db.example:6543/app?sslmode=disable").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("db.example", 6543));
        let kv =
            parse_address("host=127.0.0.1 port=5433 user=u dbname=app sslmode=disable").unwrap();
        assert_eq!((kv.host.as_str(), kv.port), ("127.0.0.1", 5433));
        assert_eq!(kv.options.get_database(), Some("app"));
        assert!(parse_address("host=x bogus=1").is_err());
        assert!(parse_address("postgres://u@/db?host=/var/run/postgresql").is_err());
    }
}

#[cfg(test)]
mod gauge_tests {
    use super::*;

    /// Against the machine's PostgreSQL: the gauges follow checkouts.
    #[tokio::test]
    async fn gauges_report_connections_in_use_and_idle() {
        let state = PostgresState::new(PostgresConfig::default());
        let raw = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
        let address = parse_address(raw).unwrap();
        let pool = state.pool(&address, raw, None).unwrap();
        assert!(
            std::ptr::eq(
                pool.connect_options().as_ref(),
                state
                    .pool(&address, raw, None)
                    .unwrap()
                    .connect_options()
                    .as_ref()
            ),
            "one pool per address"
        );
        let mut first = pool.acquire().await.unwrap();
        let _second = pool.acquire().await.unwrap();
        assert_eq!(
            state.gauges(),
            vec![PoolGauge {
                address: "127.0.0.1:5432/postgres".into(),
                in_use: 2,
                idle: 0
            }]
        );
        first.return_to_pool().await;
        let gauge = &state.gauges()[0];
        assert_eq!((gauge.in_use, gauge.idle), (1, 1));
    }
}
