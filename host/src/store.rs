//! What each wasmtime `Store` holds, the per-capability views onto it, and the
//! linker (built once per engine) that connects imports to the host.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::{self, ComponentGrants, InstanceStates};
use crate::telemetry::component_output::{ComponentOutput, Stream};
use crate::telemetry::instance::InstanceInfo;

/// The host state of one instance (one store).
pub struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    pub(crate) limits: StoreLimits,
    grants: ComponentGrants,
    capabilities: InstanceStates,
    /// Which instance this is and what it is serving (for logs and traces).
    pub instance: Arc<InstanceInfo>,
}

impl StoreData {
    pub fn new(
        grants: ComponentGrants,
        environment: &BTreeMap<String, String>,
        max_memory_bytes: usize,
        instance: Arc<InstanceInfo>,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        // The guest's output becomes log lines, tagged and rate limited.
        wasi.stdout(ComponentOutput::new(instance.clone(), Stream::Stdout))
            .stderr(ComponentOutput::new(instance.clone(), Stream::Stderr));
        for (key, value) in environment {
            wasi.env(key, value);
        }
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .instances(64)
                .build(),
            capabilities: InstanceStates::new(&grants),
            grants,
            instance,
        }
    }

    /// The parts every capability view is made of, borrowed apart.
    pub(crate) fn capability_parts(
        &mut self,
    ) -> (&mut ResourceTable, &ComponentGrants, &mut InstanceStates) {
        (&mut self.table, &self.grants, &mut self.capabilities)
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.capabilities.outbound_http,
        }
    }
}

/// Links everything the Nexa world offers. Built once per engine.
pub fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker: Linker<StoreData> = Linker::new(engine);
    // WASI 0.2: what Rust's std on wasm32-wasip2 imports.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // WASI 0.3: the parts of it the world has (no p3 filesystem or sockets).
    wasmtime_wasi::p3::cli::add_to_linker(&mut linker)?;
    wasmtime_wasi::p3::clocks::add_to_linker(&mut linker)?;
    wasmtime_wasi::p3::random::add_to_linker(&mut linker)?;
    capabilities::add_to_linker(&mut linker)?;
    Ok(linker)
}
