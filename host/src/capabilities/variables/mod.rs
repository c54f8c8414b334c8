//! `spin:variables/variables@3.0.0`: app variables (default / required /
//! secret) resolved from providers, and component variables templated over them.

mod config;
mod host;
mod state;

pub use config::{ProviderConfig, Template, TemplateError};
pub use host::Variables;
pub use state::{ComponentVariables, VariableError, VariablesState};
