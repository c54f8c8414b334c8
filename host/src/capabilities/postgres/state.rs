use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::address::PgAddress;
use super::config::PostgresConfig;

/// Run when the guest drops its connection, before it goes back to the pool:
/// an open transaction, cursors, settings, listeners, advisory locks and
/// temporary tables a guest left behind do not leak to the next one. (The
/// first line keeps ROLLBACK's "no transaction in progress" warning quiet;
/// RESET ALL, last, undoes it.)
pub const RESET_SESSION: &str = "SET client_min_messages = error; ROLLBACK; CLOSE ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; RESET ALL;";

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
            .acquire_timeout(
                address
                    .connect_timeout
                    .map_or(self.config.acquire_timeout, |guest| {
                        guest.min(self.config.acquire_timeout)
                    }),
            )
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
mod gauge_tests {
    use super::super::address::parse_address;
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
