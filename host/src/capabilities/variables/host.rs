use wasmtime::component::{Accessor, HasData};

use super::state::ComponentVariables;
use crate::spin_bindings::spin::variables::variables;

/// The `spin:variables` implementation; its view is the component's variables.
pub struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a ComponentVariables;
}

impl variables::Host for &ComponentVariables {}

impl<T> variables::HostWithStore<T> for Variables {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, variables::Error>> {
        if !crate::config::manifest::is_variable_name(&name) {
            return Ok(Err(variables::Error::InvalidName(name)));
        }
        Ok(accessor.with(|mut access| match access.get().get(&name) {
            Some(value) => Ok(value.to_string()),
            None => Err(variables::Error::Undefined(format!(
                "no variable for {name:?}"
            ))),
        }))
    }
}
