use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use sha2::{Digest, Sha256};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::address::PgAddress;
use super::config::PostgresConfig;

/// Run before a connection whose session a guest may have changed goes back
/// to its pool (see `session`): an open transaction, cursors, settings,
/// listeners, advisory locks and temporary tables do not reach the next
/// request. (The first line keeps ROLLBACK's "no transaction in progress"
/// warning quiet; RESET ALL, last, undoes it.)
pub const RESET_SESSION: &str = "SET client_min_messages = error; ROLLBACK; CLOSE ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; RESET ALL;";

/// Connects and recycles server connections for one pool. Recycling costs
/// no round trip: a connection that failed is closed by its user (see
/// `session::Release`), and one past its lifetime or idle too long is
/// replaced here. (sqlx's own pool pings on every release: a second round
/// trip per request.)
pub struct PgConnector {
    options: PgConnectOptions,
    max_lifetime: Duration,
    idle_timeout: Duration,
}

impl managed::Manager for PgConnector {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    async fn recycle(&self, _: &mut PgConnection, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.age() >= self.max_lifetime {
            Err(RecycleError::message("past its lifetime"))
        } else if metrics.last_used() >= self.idle_timeout {
            Err(RecycleError::message("idle too long"))
        } else {
            Ok(())
        }
    }
}

/// A pool of server connections to one address.
pub type PgPool = managed::Pool<PgConnector>;
/// A connection taken from a [`PgPool`]; back to the pool when dropped.
pub type PooledPg = managed::Object<PgConnector>;

/// Closes a connection instead of returning it to its pool (politely, with
/// a Terminate message, when there is a runtime to send it on).
pub fn discard(connection: PooledPg) {
    let connection = managed::Object::take(connection);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = connection.close().await;
        });
    }
}

/// A pool per component, connection string and (sha256 of the) CA root.
/// Per component, because a connection carries session state between
/// requests: one component must never see what another left behind.
type PoolKey = (String, String, Option<[u8; 32]>);

struct PoolEntry {
    pool: PgPool,
    /// `host:port/database`, without credentials, for the gauges.
    address: String,
}

/// Connection pools by (component, address, CA root). Shared by every
/// instance of a component; pools connect lazily, so an unreachable database
/// fails the guest's open within the acquire timeout instead of failing
/// start-up.
pub struct PostgresState {
    config: PostgresConfig,
    pools: Mutex<HashMap<PoolKey, PoolEntry>>,
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

    /// The pool of `component` for an address, created on first use.
    pub fn pool(
        &self,
        component: &str,
        address: &PgAddress,
        raw: &str,
        ca_root: Option<&str>,
    ) -> Result<PgPool, String> {
        let key = (
            component.to_string(),
            raw.to_string(),
            ca_root.map(|pem| Sha256::digest(pem.as_bytes()).into()),
        );
        let mut pools = self
            .pools
            .lock()
            .map_err(|_| "pool registry poisoned".to_string())?;
        if let Some(entry) = pools.get(&key) {
            return Ok(entry.pool.clone());
        }
        if pools.len() >= self.config.max_pools {
            return Err(format!(
                "too many distinct Postgres pools (component and address; at most {})",
                self.config.max_pools
            ));
        }
        let mut options = address.options.clone();
        if let Some(pem) = ca_root {
            options = options.ssl_root_cert_from_pem(pem.as_bytes().to_vec());
        }
        let display = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPool::builder(PgConnector {
            options,
            max_lifetime: self.config.max_lifetime,
            idle_timeout: self.config.idle_timeout,
        })
        .max_size(self.config.max_connections as usize)
        // The most recently used connection first: the busy few stay warm
        // and the rest go idle long enough to be closed.
        .queue_mode(managed::QueueMode::Lifo)
        .build()
        .map_err(|e| format!("postgres pool: {e}"))?;
        close_idle_connections(&pool, self.config.idle_timeout);
        pools.insert(
            key,
            PoolEntry {
                pool: pool.clone(),
                address: display,
            },
        );
        Ok(pool)
    }

    /// How long a guest's open may wait for a connection (including
    /// connecting): the pool's, or the address's `connect_timeout` if shorter.
    pub fn acquire_timeout(&self, address: &PgAddress) -> Duration {
        address
            .connect_timeout
            .map_or(self.config.acquire_timeout, |guest| {
                guest.min(self.config.acquire_timeout)
            })
    }

    /// In-use and idle connections of every pool.
    pub fn gauges(&self) -> Vec<PoolGauge> {
        let Ok(pools) = self.pools.lock() else {
            return Vec::new();
        };
        pools
            .values()
            .map(|entry| {
                let status = entry.pool.status();
                let idle = status.available as u32;
                PoolGauge {
                    address: entry.address.clone(),
                    in_use: (status.size as u32).saturating_sub(idle),
                    idle,
                }
            })
            .collect()
    }
}

/// Takes a connection from `pool` within `timeout` (waiting for a free
/// one and connecting both count).
pub async fn acquire(pool: &PgPool, timeout: Duration) -> Result<PooledPg, String> {
    match tokio::time::timeout(timeout, pool.get()).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(managed::PoolError::Backend(error))) => Err(error.to_string()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no connection within {} ms (pool of {} busy, or the server is slow to answer)",
            timeout.as_millis(),
            pool.status().max_size
        )),
    }
}

/// Closes connections idle for `idle_timeout`, as long as the pool lives
/// (deadpool only checks a connection when it is next taken).
fn close_idle_connections(pool: &PgPool, idle_timeout: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let pool = pool.weak();
    let period = (idle_timeout / 2).max(Duration::from_millis(500));
    runtime.spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(pool) = pool.upgrade() else { return };
            pool.retain(|_, metrics| metrics.last_used() < idle_timeout);
        }
    });
}

#[cfg(test)]
mod gauge_tests {
    use super::super::address::parse_address;
    use super::*;

    const RAW: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

    /// Against the machine's PostgreSQL: the gauges follow checkouts, and
    /// each component has a pool of its own.
    #[tokio::test]
    async fn gauges_report_connections_in_use_and_idle() {
        let state = PostgresState::new(PostgresConfig::default());
        let address = parse_address(RAW).unwrap();
        let pool = state.pool("items", &address, RAW, None).unwrap();
        let timeout = Duration::from_secs(5);
        let first = acquire(&pool, timeout).await.unwrap();
        let _second = acquire(&pool, timeout).await.unwrap();
        assert_eq!(
            state.gauges(),
            vec![PoolGauge {
                address: "127.0.0.1:5432/postgres".into(),
                in_use: 2,
                idle: 0
            }]
        );
        drop(first);
        let gauge = &state.gauges()[0];
        assert_eq!((gauge.in_use, gauge.idle), (1, 1));

        let same = state.pool("items", &address, RAW, None).unwrap();
        let other = state.pool("auth", &address, RAW, None).unwrap();
        assert_eq!(same.status().size, 2, "one pool per component and address");
        assert_eq!(
            other.status().size,
            0,
            "another component's pool is its own"
        );
        assert_eq!(state.gauges().len(), 2);
    }

    /// A connection idle past the timeout is closed by the pool.
    #[tokio::test]
    async fn idle_connections_are_closed() {
        let state = PostgresState::new(PostgresConfig {
            idle_timeout: Duration::from_millis(300),
            ..PostgresConfig::default()
        });
        let address = parse_address(RAW).unwrap();
        let pool = state.pool("items", &address, RAW, None).unwrap();
        drop(acquire(&pool, Duration::from_secs(5)).await.unwrap());
        assert_eq!(pool.status().size, 1);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(pool.status().size, 0);
    }
}
