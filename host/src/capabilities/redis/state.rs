use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Semaphore;

/// How the shared Redis connections behave.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Guest connections open at once across the app. From the runtime
    /// config's `[outbound_redis] max_connections`; default unlimited (as Spin).
    pub max_connections: Option<u32>,
    /// Connecting gives up after this long. Default 2 s.
    pub connect_timeout: Duration,
    /// A command gives up after this long. Default 5 s.
    pub response_timeout: Duration,
    /// Distinct addresses an app may use. Default 16.
    pub max_addresses: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            max_connections: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            max_addresses: 16,
        }
    }
}

/// Shared connections by address.
pub struct RedisState {
    config: RedisConfig,
    connections: Mutex<HashMap<String, ConnectionManager>>,
    permits: Option<Arc<Semaphore>>,
}

impl RedisState {
    pub fn new(config: RedisConfig) -> Self {
        let permits = config
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        Self {
            config,
            connections: Mutex::new(HashMap::new()),
            permits,
        }
    }

    pub fn permits(&self) -> Option<&Arc<Semaphore>> {
        self.permits.as_ref()
    }

    /// The shared connection for an address, created (lazily connecting) on
    /// first use. `Err` when the address is not a Redis URL.
    pub fn connection(&self, address: &str) -> Result<ConnectionManager, ConnectionError> {
        let mut connections = self
            .connections
            .lock()
            .map_err(|_| ConnectionError::Other("connection registry poisoned".into()))?;
        if let Some(connection) = connections.get(address) {
            return Ok(connection.clone());
        }
        if connections.len() >= self.config.max_addresses {
            return Err(ConnectionError::TooMany);
        }
        let client = redis::Client::open(address).map_err(|_| ConnectionError::InvalidAddress)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.response_timeout))
            .set_number_of_retries(1);
        let connection = client
            .get_connection_manager_lazy(config)
            .map_err(|e| ConnectionError::Other(e.to_string()))?;
        connections.insert(address.to_string(), connection.clone());
        Ok(connection)
    }
}

#[derive(Debug)]
pub enum ConnectionError {
    InvalidAddress,
    TooMany,
    Other(String),
}
