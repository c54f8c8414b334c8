use std::time::Duration;

/// How the Postgres pools are sized and timed.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Server connections per pool (one pool per component and address).
    /// From the runtime config's `[outbound_pg] max_connections`; default 16.
    pub max_connections: u32,
    /// How long an open waits for a connection (including connecting) before
    /// the guest gets `connection-failed`. Default 5 s.
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long. Default 60 s.
    pub idle_timeout: Duration,
    /// Connections are replaced after this long. Default 30 min.
    pub max_lifetime: Duration,
    /// Pools (component and address pairs) an app may use. Default 16.
    pub max_pools: usize,
    /// Result bytes buffered on the host for one `query`. Default 128 MiB (as Spin).
    pub max_result_bytes: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(30 * 60),
            max_pools: 16,
            max_result_bytes: 128 << 20,
        }
    }
}
