//! `spin:postgres/postgres@4.2.0`: a pool of sqlx connections per component
//! and connection address (and CA root), built on first use and shared by
//! every instance of the component; a session reset only when a guest's
//! statements may have changed the session (see `session`); the address
//! checked against the component's `allowed_outbound_hosts` on every open;
//! every WIT parameter and column type mapped both ways; rows streamed to the
//! guest for `query-async`.

pub mod address;
mod config;
mod host;
mod numeric;
mod session;
mod state;
mod types;

pub use config::PostgresConfig;
pub use host::{OpenPgConnection, PgConnectionBuilder, Postgres, PostgresGrant, PostgresView};
pub use state::{PgPool, PoolGauge, PostgresState, acquire};

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};

use super::{AppContext, Capability, ComponentContext};
use crate::spin_bindings::spin;
use crate::store::StoreData;

impl Capability for Postgres {
    const NAME: &'static str = "postgres";
    type State = PostgresState;
    type Grant = PostgresGrant;
    type InstanceState = ();

    /// The pools are made on first use of each address; nothing connects
    /// here. Refuses to start while the environment could leak into a
    /// guest's connection options.
    fn build(app: &AppContext<'_>) -> anyhow::Result<PostgresState> {
        address::check_environment().map_err(anyhow::Error::msg)?;
        let mut config = PostgresConfig::default();
        if let Some(max) = app.runtime.config.outbound_pg.max_connections {
            config.max_connections = max.max(1);
        }
        Ok(PostgresState::new(config))
    }

    fn grant(
        state: &Arc<PostgresState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<PostgresGrant> {
        Ok(PostgresGrant {
            component: component.id.to_string(),
            allowed_hosts: component.allowed_hosts.clone(),
            state: state.clone(),
        })
    }

    fn new_instance(_: &Arc<PostgresGrant>) {}

    fn view<'a>(
        table: &'a mut ResourceTable,
        grant: &'a Arc<PostgresGrant>,
        _: &'a mut (),
    ) -> PostgresView<'a> {
        PostgresView { table, grant }
    }

    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> PostgresView<'_>,
    ) -> wasmtime::Result<()> {
        spin::postgres::postgres::add_to_linker::<_, Postgres>(linker, view)
    }
}
