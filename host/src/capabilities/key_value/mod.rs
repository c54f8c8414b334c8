//! `spin:key-value/key-value@3.0.0`: app-scoped stores shared by all instances,
//! opened by label under each component's `key_value_stores` allow-list.
//! Backends: an embedded SQLite file (the `default` store, no set-up) and Redis
//! (one shared, auto-reconnecting connection per store).

mod config;
mod host;
mod state;

pub use config::{
    DEFAULT_LABEL, KeyValueStoreSection, StoreBackendConfig, stores_from_runtime_config,
};
pub use host::{KeyValue, KeyValueView, OpenStore};
pub use state::{KeyValueBackend, KeyValueError, KeyValueGrant, KeyValueState};

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::bail;
use wasmtime::component::{Linker, ResourceTable};

use super::{AppContext, Capability, ComponentContext};
use crate::spin_bindings::spin;
use crate::store::StoreData;

impl Capability for KeyValue {
    const NAME: &'static str = "key-value";
    type State = KeyValueState;
    type Grant = KeyValueGrant;
    /// How many stores the instance holds open.
    type InstanceState = usize;

    /// Opens the stores some component uses (and only those).
    fn build(app: &AppContext<'_>) -> anyhow::Result<KeyValueState> {
        let configs = stores_from_runtime_config(app.runtime, app.state_dir);
        let used: HashSet<String> = app
            .manifest
            .manifest
            .component
            .values()
            .flat_map(|component| component.key_value_stores.iter().cloned())
            .collect();
        Ok(KeyValueState::open(&configs, &used)?)
    }

    fn grant(
        state: &Arc<KeyValueState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<KeyValueGrant> {
        for label in &component.decl.key_value_stores {
            if state.store(label).is_none() {
                bail!(
                    "component \"{}\" uses key-value store \"{label}\", which is not defined; add [key_value_store.{label}] to the runtime config",
                    component.id
                );
            }
        }
        Ok(KeyValueGrant {
            allowed: component.decl.key_value_stores.iter().cloned().collect(),
            state: state.clone(),
        })
    }

    fn new_instance(_: &Arc<KeyValueGrant>) -> usize {
        0
    }

    fn view<'a>(
        table: &'a mut ResourceTable,
        grant: &'a Arc<KeyValueGrant>,
        open_stores: &'a mut usize,
    ) -> KeyValueView<'a> {
        KeyValueView {
            table,
            grant,
            open_stores,
        }
    }

    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> KeyValueView<'_>,
    ) -> wasmtime::Result<()> {
        spin::key_value::key_value::add_to_linker::<_, KeyValue>(linker, view)
    }
}
