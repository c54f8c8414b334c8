use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader};

use super::state::{KeyValueBackend, KeyValueGrant};
use crate::spin_bindings::spin::key_value::key_value::{self, Error};

/// Stores one instance may hold open at once, as in Spin.
const MAX_OPEN_STORES: usize = 256;

/// A store the guest opened: a handle on the shared backend.
pub struct OpenStore {
    backend: Arc<KeyValueBackend>,
}

/// The `spin:key-value` implementation.
pub struct KeyValue;

/// What the key-value host sees of a store's data.
pub struct KeyValueView<'a> {
    pub table: &'a mut ResourceTable,
    pub grant: &'a KeyValueGrant,
    pub open_stores: &'a mut usize,
}

impl HasData for KeyValue {
    type Data<'a> = KeyValueView<'a>;
}

impl key_value::Host for KeyValueView<'_> {}
impl key_value::HostStore for KeyValueView<'_> {}

fn backend<T>(
    accessor: &Accessor<T, KeyValue>,
    store: &Resource<OpenStore>,
) -> wasmtime::Result<Arc<KeyValueBackend>> {
    accessor.with(|mut access| {
        let view = access.get();
        Ok(view.table.get(store)?.backend.clone())
    })
}

fn other(error: impl std::fmt::Display) -> Error {
    Error::Other(error.to_string())
}

impl<T> key_value::HostStoreWithStore<T> for KeyValue {
    async fn drop(accessor: &Accessor<T, Self>, rep: Resource<OpenStore>) -> wasmtime::Result<()> {
        accessor.with(|mut access| {
            let view = access.get();
            view.table.delete(rep)?;
            *view.open_stores = view.open_stores.saturating_sub(1);
            Ok(())
        })
    }

    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            // Spin's order: the allow-list first, so a component learns nothing
            // about stores it may not use.
            if !view.grant.allowed.contains(&label) {
                return Ok(Err(Error::AccessDenied));
            }
            let Some(backend) = view.grant.state.store(&label) else {
                return Ok(Err(Error::NoSuchStore));
            };
            if *view.open_stores >= MAX_OPEN_STORES {
                return Ok(Err(Error::StoreTableFull));
            }
            let handle = view.table.push(OpenStore { backend })?;
            *view.open_stores += 1;
            Ok(Ok(handle))
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let backend = backend(accessor, &store)?;
        let found = backend.get(key).await.map_err(other);
        if let Ok(value) = &found {
            tracing::event!(
                target: crate::capabilities::calls::SPAN_ATTRIBUTES,
                tracing::Level::TRACE,
                nexa.key_value.hit = value.is_some(),
            );
            let result = if value.is_some() { "hit" } else { "miss" };
            crate::metrics::Metrics::global()
                .key_value_lookups
                .with_label_values(&[result])
                .inc();
        }
        Ok(found)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let backend = backend(accessor, &store)?;
        Ok(backend.set(key, value).await.map_err(other))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let backend = backend(accessor, &store)?;
        Ok(backend.delete(key).await.map_err(other))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let backend = backend(accessor, &store)?;
        Ok(backend.exists(key).await.map_err(other))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let backend = backend(accessor, &store)?;
        let (keys, outcome) = match backend.keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(other(e))),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok((keys, outcome))
        })
    }
}
