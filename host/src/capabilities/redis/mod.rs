//! `spin:redis/redis@3.0.0`: one multiplexed, self-reconnecting connection
//! per address, shared by every instance (Spin opens a new one per guest
//! `open`); addresses checked against `allowed_outbound_hosts`; every
//! operation of the interface, and `execute` with its value types.

mod host;
mod state;

pub use host::{OpenRedisConnection, Redis, RedisGrant, RedisView};
pub use state::{RedisConfig, RedisState};

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};

use super::{AppContext, Capability, ComponentContext};
use crate::spin_bindings::spin;
use crate::store::StoreData;

impl Capability for Redis {
    const NAME: &'static str = "redis";
    type State = RedisState;
    type Grant = RedisGrant;
    type InstanceState = ();

    /// Connections are made on first use of each address; nothing connects here.
    fn build(app: &AppContext<'_>) -> anyhow::Result<RedisState> {
        Ok(RedisState::new(RedisConfig {
            max_connections: app.runtime.config.outbound_redis.max_connections,
            ..RedisConfig::default()
        }))
    }

    fn grant(
        state: &Arc<RedisState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<RedisGrant> {
        Ok(RedisGrant {
            component: component.id.to_string(),
            allowed_hosts: component.allowed_hosts.clone(),
            state: state.clone(),
        })
    }

    fn new_instance(_: &Arc<RedisGrant>) {}

    fn view<'a>(
        table: &'a mut ResourceTable,
        grant: &'a Arc<RedisGrant>,
        _: &'a mut (),
    ) -> RedisView<'a> {
        RedisView { table, grant }
    }

    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> RedisView<'_>,
    ) -> wasmtime::Result<()> {
        spin::redis::redis::add_to_linker::<_, Redis>(linker, view)
    }
}
