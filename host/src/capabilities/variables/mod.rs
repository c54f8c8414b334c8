//! `spin:variables/variables@3.0.0`: app variables (default / required /
//! secret) resolved from providers, and component variables templated over them.

mod config;
mod host;
mod state;

pub use config::{ProviderConfig, Template, TemplateError, VariablesProviderSection, providers};
pub use host::Variables;
pub use state::{ComponentVariables, VariableError, VariablesState};

use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};

use super::{AppContext, Capability, ComponentContext};
use crate::spin_bindings::spin;
use crate::store::StoreData;

impl Capability for Variables {
    const NAME: &'static str = "variables";
    type State = VariablesState;
    type Grant = ComponentVariables;
    type InstanceState = ();

    fn build(app: &AppContext<'_>) -> anyhow::Result<VariablesState> {
        let state = VariablesState::new(
            app.manifest.manifest.variables.clone(),
            config::providers(app.runtime)?,
        );
        state.check_required()?;
        Ok(state)
    }

    fn grant(
        state: &Arc<VariablesState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<ComponentVariables> {
        Ok(state.for_component(component.id, &component.decl.variables)?)
    }

    fn new_instance(_: &Arc<ComponentVariables>) {}

    fn view<'a>(
        _: &'a mut ResourceTable,
        grant: &'a Arc<ComponentVariables>,
        _: &'a mut (),
    ) -> &'a ComponentVariables {
        grant
    }

    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> &ComponentVariables,
    ) -> wasmtime::Result<()> {
        spin::variables::variables::add_to_linker::<_, Variables>(linker, view)
    }
}
