//! Spin capabilities, one module each with the same shape:
//!
//! - `config`: its section of the runtime config and its plain settings struct;
//! - `state`: what is built once per app (stores, pools, resolved values) and
//!   shared by every instance through `Arc`s;
//! - `host`: the WIT host implementation, which sees only its own view of the
//!   per-store data.
//!
//! Each implements [`Capability`]; the [`capabilities!`] list below is the one
//! place the host learns of them. Adding a capability is its module plus one
//! line there. Every host call of every capability passes through the
//! `tracing` instrumentation that `bindgen!` generates around each import
//! (see `build.rs`), which [`calls`] turns into per-call records.

pub mod allowed_hosts;
pub mod calls;
pub mod key_value;
pub mod outbound_http;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod variables;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::config::manifest::{ComponentDecl, LoadedManifest};
use crate::config::runtime::LoadedRuntimeConfig;
use crate::store::StoreData;
use allowed_hosts::AllowedHosts;

/// What a capability may read when it builds its app-level state: the app's
/// files, already parsed and checked.
pub struct AppContext<'a> {
    pub manifest: &'a LoadedManifest,
    pub runtime: &'a LoadedRuntimeConfig,
    /// Where embedded stores live.
    pub state_dir: &'a Path,
}

/// What a capability may read when it grants one component access.
pub struct ComponentContext<'a> {
    pub id: &'a str,
    pub decl: &'a ComponentDecl,
    /// `allowed_outbound_hosts`, with its `{{ variables }}` resolved.
    pub allowed_hosts: &'a Arc<AllowedHosts>,
    /// The app's variables (outbound hosts and component variables use them).
    pub variables: &'a variables::VariablesState,
}

/// One capability of the host: its app-level state, what each component is
/// granted, each instance's view, and its WIT host functions.
pub trait Capability: HasData + Sized + 'static {
    /// Its name in logs and errors.
    const NAME: &'static str;
    /// Built once per app and shared by every instance.
    type State: Send + Sync + 'static;
    /// What one component may use; built at load time, shared by its instances.
    type Grant: Send + Sync + 'static;
    /// Mutable state of one instance (kept small: built per instance).
    type InstanceState: Send + 'static;

    /// Builds the app-level state from the capability's config sections.
    fn build(app: &AppContext<'_>) -> anyhow::Result<Self::State>;

    /// What `component` may use, checked against what the app defines.
    fn grant(
        state: &Arc<Self::State>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<Self::Grant>;

    /// The state a new instance starts with.
    fn new_instance(grant: &Arc<Self::Grant>) -> Self::InstanceState;

    /// The slice of an instance's data the host functions see.
    fn view<'a>(
        table: &'a mut ResourceTable,
        grant: &'a Arc<Self::Grant>,
        instance: &'a mut Self::InstanceState,
    ) -> Self::Data<'a>;

    /// Links the capability's WIT host functions, reaching each store's data
    /// through `view`.
    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> Self::Data<'_>,
    ) -> wasmtime::Result<()>;
}

/// Declares the host's capabilities: generates the per-app, per-component and
/// per-instance records holding each one's part, and the linker registration.
macro_rules! capabilities {
    ($($field:ident: $capability:ty),* $(,)?) => {
        /// Every capability's app-level state, built once per app.
        pub struct AppCapabilities {
            $(pub $field: Arc<<$capability as Capability>::State>,)*
        }

        impl AppCapabilities {
            pub fn build(app: &AppContext<'_>) -> anyhow::Result<Self> {
                Ok(Self {
                    $($field: Arc::new(
                        <$capability as Capability>::build(app)
                            .with_context(|| format!("capability {}", <$capability as Capability>::NAME))?,
                    ),)*
                })
            }

            /// What one component may use, from every capability.
            pub fn grant(&self, component: &ComponentContext<'_>) -> anyhow::Result<ComponentGrants> {
                Ok(ComponentGrants {
                    $($field: Arc::new(<$capability as Capability>::grant(&self.$field, component)?),)*
                })
            }
        }

        /// One component's grants, shared (cheaply cloned) by its instances.
        #[derive(Clone)]
        pub struct ComponentGrants {
            $(pub $field: Arc<<$capability as Capability>::Grant>,)*
        }

        /// Every capability's state in one instance.
        pub struct InstanceStates {
            $(pub $field: <$capability as Capability>::InstanceState,)*
        }

        impl InstanceStates {
            pub fn new(grants: &ComponentGrants) -> Self {
                Self {
                    $($field: <$capability as Capability>::new_instance(&grants.$field),)*
                }
            }
        }

        /// Each capability's view of a store's data.
        mod views {
            use super::*;
            $(
                pub fn $field(data: &mut StoreData) -> <$capability as HasData>::Data<'_> {
                    let (table, grants, instance) = data.capability_parts();
                    <$capability as Capability>::view(table, &grants.$field, &mut instance.$field)
                }
            )*
        }

        /// Links every capability's host functions. Built once per engine.
        pub fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
            $(<$capability as Capability>::add_to_linker(linker, views::$field)?;)*
            Ok(())
        }
    };
}

capabilities! {
    variables: variables::Variables,
    key_value: key_value::KeyValue,
    sqlite: sqlite::Sqlite,
    postgres: postgres::Postgres,
    redis: redis::Redis,
    outbound_http: outbound_http::OutboundHttp,
}
