//! What each wasmtime `Store` holds, the per-capability views onto it, and the
//! linker (built once per engine) that connects imports to the host.

use std::collections::BTreeMap;

use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::key_value::{KeyValue, KeyValueView};
use crate::capabilities::postgres::{Postgres, PostgresView};
use crate::capabilities::redis::{Redis, RedisView};
use crate::capabilities::sqlite::{Sqlite, SqliteView};
use crate::capabilities::variables::Variables;
use crate::capabilities::{ComponentCapabilities, outbound_http::OutboundHttp};
use crate::spin_bindings::spin;

/// The host state of one instance (one store).
pub struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    outbound_http: OutboundHttp,
    pub(crate) limits: StoreLimits,
    capabilities: ComponentCapabilities,
    open_key_value_stores: usize,
}

impl StoreData {
    pub fn new(
        capabilities: ComponentCapabilities,
        environment: &BTreeMap<String, String>,
        max_memory_bytes: usize,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        for (key, value) in environment {
            wasi.env(key, value);
        }
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound_http: OutboundHttp {
                grant: capabilities.outbound_http.clone(),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .instances(64)
                .build(),
            capabilities,
            open_key_value_stores: 0,
        }
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
            hooks: &mut self.outbound_http,
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
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;

    spin::variables::variables::add_to_linker::<_, Variables>(&mut linker, |data| {
        &*data.capabilities.variables
    })?;
    spin::key_value::key_value::add_to_linker::<_, KeyValue>(&mut linker, |data| KeyValueView {
        table: &mut data.table,
        grant: &data.capabilities.key_value,
        open_stores: &mut data.open_key_value_stores,
    })?;
    spin::sqlite::sqlite::add_to_linker::<_, Sqlite>(&mut linker, |data| SqliteView {
        table: &mut data.table,
        grant: &data.capabilities.sqlite,
    })?;
    spin::postgres::postgres::add_to_linker::<_, Postgres>(&mut linker, |data| PostgresView {
        table: &mut data.table,
        grant: &data.capabilities.postgres,
    })?;
    spin::redis::redis::add_to_linker::<_, Redis>(&mut linker, |data| RedisView {
        table: &mut data.table,
        grant: &data.capabilities.redis,
    })?;
    Ok(linker)
}
