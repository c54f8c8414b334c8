//! `spin:postgres/postgres@4.2.0`: one sqlx `PgPool` per connection address
//! (and CA root), built on first use and shared by every instance; the address
//! checked against the component's `allowed_outbound_hosts` on every open;
//! every WIT parameter and column type mapped both ways; rows streamed to the
//! guest for `query-async`.

mod config;
mod host;
mod numeric;
mod state;
mod types;

pub use config::PostgresConfig;
pub use host::{OpenPgConnection, PgConnectionBuilder, Postgres, PostgresGrant, PostgresView};
pub use state::{PoolGauge, PostgresState};
