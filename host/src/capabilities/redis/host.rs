use std::sync::Arc;

use ::redis::aio::ConnectionManager;
use ::redis::{AsyncCommands, Value};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::{Accessor, HasData, Resource, ResourceTable};

use super::state::{ConnectionError, RedisState};
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::spin_bindings::spin::redis::redis::{self, Error, Payload, RedisParameter, RedisResult};

/// A guest's handle on the shared connection for one address.
pub struct OpenRedisConnection {
    connection: ConnectionManager,
    /// `host:port`, without credentials: the metrics' label.
    address: Arc<str>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// What one component may reach, and the shared connections.
pub struct RedisGrant {
    pub component: String,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub state: Arc<RedisState>,
}

/// The `spin:redis` implementation.
pub struct Redis;

/// What the Redis host sees of a store's data.
pub struct RedisView<'a> {
    pub table: &'a mut ResourceTable,
    pub grant: &'a Arc<RedisGrant>,
}

impl HasData for Redis {
    type Data<'a> = RedisView<'a>;
}

impl redis::Host for RedisView<'_> {}
impl redis::HostConnection for RedisView<'_> {}

fn open(grant: &RedisGrant, address: &str) -> Result<OpenRedisConnection, Error> {
    let url = url::Url::parse(address).map_err(|_| Error::InvalidAddress)?;
    let host = url.host_str().ok_or(Error::InvalidAddress)?;
    let port = url.port().or(match url.scheme() {
        "redis" => Some(6379),
        _ => None,
    });
    if !grant.allowed_hosts.allows(url.scheme(), host, port) {
        tracing::warn!(
            component = %grant.component,
            "denied a connection to {}://{host}:{}: add it to allowed_outbound_hosts to allow it",
            url.scheme(),
            port.map(|p| p.to_string()).unwrap_or_default()
        );
        return Err(Error::InvalidAddress);
    }
    let permit = match grant.state.permits() {
        Some(permits) => Some(
            permits
                .clone()
                .try_acquire_owned()
                .map_err(|_| Error::TooManyConnections)?,
        ),
        None => None,
    };
    let connection = grant.state.connection(address).map_err(|e| match e {
        ConnectionError::InvalidAddress => Error::InvalidAddress,
        ConnectionError::TooMany => Error::TooManyConnections,
        ConnectionError::Other(message) => Error::Other(message),
    })?;
    Ok(OpenRedisConnection {
        connection,
        address: format!("{host}:{}", port.unwrap_or_default()).into(),
        _permit: permit,
    })
}

fn other(error: ::redis::RedisError) -> Error {
    Error::Other(error.to_string())
}

fn connection<T>(
    accessor: &Accessor<T, Redis>,
    handle: &Resource<OpenRedisConnection>,
) -> wasmtime::Result<(ConnectionManager, Arc<str>)> {
    accessor.with(|mut access| {
        let open = access.get().table.get(handle)?;
        Ok((open.connection.clone(), open.address.clone()))
    })
}

/// Records whether the address answered (a server error is an answer).
fn observed<V>(address: &str, result: ::redis::RedisResult<V>) -> ::redis::RedisResult<V> {
    let unreachable = result.as_ref().is_err_and(|e| {
        e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
    });
    crate::metrics::Metrics::global()
        .redis_connection_up
        .with_label_values(&[address])
        .set(i64::from(!unreachable));
    result
}

/// Flattens a reply into the WIT's list, as Spin does (nested arrays in order).
fn flatten(value: Value, out: &mut Vec<RedisResult>) -> Result<(), Error> {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(i) => out.push(RedisResult::Int64(i)),
        Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".to_string())),
        Value::Array(values) | Value::Set(values) => {
            for value in values {
                flatten(value, out)?;
            }
        }
        Value::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
        Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(b))),
        Value::BigNumber(n) => out.push(RedisResult::Binary(n)),
        Value::ServerError(e) => return Err(Error::Other(format!("{e:?}"))),
        other => {
            return Err(Error::Other(format!(
                "Could not convert Redis response: {other:?} is not supported"
            )));
        }
    }
    Ok(())
}

/// One WIT method that runs one command on the guest's connection; Redis
/// errors become the interface's `other`.
macro_rules! one_command {
    ($name:ident($($arg:ident: $ty:ty),*) -> $out:ty = |$c:ident| $call:expr) => {
        async fn $name(
            accessor: &Accessor<T, Self>,
            handle: Resource<OpenRedisConnection>,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<$out, Error>> {
            let (mut $c, address) = connection(accessor, &handle)?;
            Ok(observed(&address, $call.await).map_err(other))
        }
    };
}

impl<T: Send> redis::HostConnectionWithStore<T> for Redis {
    async fn drop(
        accessor: &Accessor<T, Self>,
        rep: Resource<OpenRedisConnection>,
    ) -> wasmtime::Result<()> {
        accessor.with(|mut access| access.get().table.delete(rep).map(drop))?;
        Ok(())
    }

    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenRedisConnection>, Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            Ok(match open(view.grant, &address) {
                Ok(connection) => Ok(view.table.push(connection)?),
                Err(e) => Err(e),
            })
        })
    }

    // The operations that are one Redis command on the guest's connection.
    one_command!(publish(channel: String, payload: Payload) -> () = |c| c.publish::<_, _, ()>(channel, payload));
    one_command!(get(key: String) -> Option<Payload> = |c| c.get(key));
    one_command!(set(key: String, value: Payload) -> () = |c| c.set::<_, _, ()>(key, value));
    one_command!(incr(key: String) -> i64 = |c| c.incr(key, 1));
    one_command!(del(keys: Vec<String>) -> u32 = |c| c.del(keys));
    one_command!(smembers(key: String) -> Vec<String> = |c| c.smembers(key));
    one_command!(srem(key: String, values: Vec<String>) -> u32 = |c| c.srem(key, values));

    async fn sadd(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenRedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let (mut c, address) = connection(accessor, &handle)?;
        Ok(
            observed(&address, c.sadd(key, values).await).map_err(|e| match e.kind() {
                ::redis::ErrorKind::UnexpectedReturnType => Error::TypeError,
                _ => other(e),
            }),
        )
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenRedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let (mut c, address) = connection(accessor, &handle)?;
        let mut cmd = ::redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(i) => cmd.arg(i),
                RedisParameter::Binary(bytes) => cmd.arg(bytes),
            };
        }
        let reply: Value = match observed(&address, cmd.query_async(&mut c).await) {
            Ok(reply) => reply,
            Err(e) => return Ok(Err(other(e))),
        };
        let mut results = Vec::new();
        Ok(flatten(reply, &mut results).map(|()| results))
    }
}
