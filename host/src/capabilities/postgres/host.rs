use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnection, PgDatabaseError};
use sqlx::{Either, Executor, Statement};
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};
use wasmtime::StoreContextMut;
use wasmtime::component::{
    Access, Accessor, Destination, FutureReader, HasData, Resource, ResourceTable, StreamProducer,
    StreamReader, StreamResult,
};

use super::address::parse_address;
use super::session::{Release, SessionEffect, SessionState};
use super::state::{self, PooledPg, PostgresState, RESET_SESSION};
use super::types;
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::spin_bindings::spin::postgres::postgres::{
    self, Column, DbError, Error, ParameterValue, QueryError, Row, RowSet,
};

type Connection = Arc<Mutex<Leased>>;

/// A connection the guest opened: a pooled connection held until the guest
/// drops it, then back to its pool (reset first if it needs it).
pub struct OpenPgConnection {
    connection: Connection,
}

/// A pooled connection and what the guest's statements did to its session.
pub struct Leased {
    /// `None` once released.
    pooled: Option<PooledPg>,
    session: SessionState,
}

impl Leased {
    /// The connection, unless it was released (then every use fails).
    fn connection(&mut self) -> Option<&mut PgConnection> {
        self.pooled.as_deref_mut()
    }

    /// Runs one statement's work on the connection, keeping track of its
    /// effect on the session (an abandoned `work` leaves it lost).
    async fn run<R>(
        &mut self,
        statement: &str,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let effect = self.session.starting(statement);
        let outcome = match self.connection() {
            Some(connection) => work(connection).await,
            None => Err(released()),
        };
        self.finished(effect, outcome.as_ref().err());
        outcome
    }

    fn finished(&mut self, effect: SessionEffect, error: Option<&Error>) {
        let connection_failed = matches!(error, Some(Error::ConnectionFailed(_)));
        self.session
            .finished(effect, error.is_none(), connection_failed);
    }

    /// Back to the pool, after a reset if the session may have changed; a
    /// connection in an unknown state is closed instead.
    async fn release(&mut self) {
        let Some(mut pooled) = self.pooled.take() else {
            return;
        };
        match self.session.on_release() {
            Release::AsIs => drop(pooled),
            Release::ResetFirst => {
                if (&mut *pooled)
                    .execute(sqlx::raw_sql(RESET_SESSION))
                    .await
                    .is_ok()
                {
                    drop(pooled);
                } else {
                    state::discard(pooled);
                }
            }
            Release::Close => state::discard(pooled),
        }
    }
}

fn released() -> Error {
    Error::ConnectionFailed("the connection was released".into())
}

impl Drop for Leased {
    /// Dropped without a release (the instance was torn down): back to the
    /// pool only if nothing needs undoing, since a reset cannot run here.
    fn drop(&mut self) {
        if let Some(pooled) = self.pooled.take() {
            match self.session.on_release() {
                Release::AsIs => drop(pooled),
                Release::ResetFirst | Release::Close => state::discard(pooled),
            }
        }
    }
}

/// A `connection-builder`: an address and an optional CA root.
pub struct PgConnectionBuilder {
    address: String,
    ca_root: Option<String>,
}

/// What one component may reach, and the shared pools.
pub struct PostgresGrant {
    pub component: String,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub state: Arc<PostgresState>,
}

/// The `spin:postgres` implementation.
pub struct Postgres;

/// What the Postgres host sees of a store's data.
pub struct PostgresView<'a> {
    pub table: &'a mut ResourceTable,
    pub grant: &'a Arc<PostgresGrant>,
}

impl HasData for Postgres {
    type Data<'a> = PostgresView<'a>;
}

impl postgres::Host for PostgresView<'_> {}
impl postgres::HostConnection for PostgresView<'_> {}
impl postgres::HostConnectionBuilder for PostgresView<'_> {}

/// Checks the allow-list and takes a connection from the address's pool.
async fn open(
    grant: Arc<PostgresGrant>,
    address: String,
    ca_root: Option<String>,
) -> Result<OpenPgConnection, Error> {
    let parsed = parse_address(&address).map_err(Error::ConnectionFailed)?;
    if !grant
        .allowed_hosts
        .allows("postgres", &parsed.host, Some(parsed.port))
    {
        let target = format!("postgres://{}:{}", parsed.host, parsed.port);
        tracing::warn!(
            component = %grant.component,
            "denied a connection to {target}: add it to allowed_outbound_hosts to allow it"
        );
        return Err(Error::ConnectionFailed(format!(
            "address {target} is not permitted"
        )));
    }
    let pool = grant
        .state
        .pool(&grant.component, &parsed, &address, ca_root.as_deref())
        .map_err(Error::ConnectionFailed)?;
    let waiting = std::time::Instant::now();
    let pooled = state::acquire(&pool, grant.state.acquire_timeout(&parsed))
        .await
        .map_err(Error::ConnectionFailed)?;
    crate::metrics::Metrics::global()
        .postgres_pool_acquire
        .observe(waiting.elapsed().as_secs_f64());
    Ok(OpenPgConnection {
        connection: Arc::new(Mutex::new(Leased {
            pooled: Some(pooled),
            session: SessionState::default(),
        })),
    })
}

/// Returns the connection to its pool before the guest's drop completes,
/// so the next open reuses it.
async fn release(connection: Connection) {
    connection.lock_owned().await.release().await;
}

/// Maps a sqlx error to the WIT's: the server's errors keep their fields.
fn query_error(error: sqlx::Error) -> Error {
    match error {
        sqlx::Error::Database(database) => match database.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => {
                let extras = [
                    ("column", pg.column().map(str::to_string)),
                    ("constraint", pg.constraint().map(str::to_string)),
                    ("routine", pg.routine().map(str::to_string)),
                    ("hint", pg.hint().map(str::to_string)),
                    ("table", pg.table().map(str::to_string)),
                    ("datatype", pg.data_type().map(str::to_string)),
                    ("schema", pg.schema().map(str::to_string)),
                    ("file", pg.file().map(str::to_string)),
                    ("line", pg.line().map(|l| l.to_string())),
                    ("where_", pg.r#where().map(str::to_string)),
                ]
                .into_iter()
                .filter_map(|(key, value)| value.map(|v| (key.to_string(), v)))
                .collect();
                Error::QueryFailed(QueryError::DbError(DbError {
                    as_text: pg.to_string(),
                    severity: format!("{:?}", pg.severity()).to_ascii_uppercase(),
                    code: pg.code().to_string(),
                    message: pg.message().to_string(),
                    detail: pg.detail().map(str::to_string),
                    extras,
                }))
            }
            None => Error::QueryFailed(QueryError::Text(database.to_string())),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::ConnectionFailed(error.to_string()),
        other => Error::QueryFailed(QueryError::Text(other.to_string())),
    }
}

/// Why a statement could not be started: the parameters (reported as
/// `bad-parameter` by query, `value-conversion-failed` by execute, as Spin
/// does) or the statement itself.
enum StartError {
    Parameter(String),
    Query(Error),
}

impl StartError {
    fn for_query(self) -> Error {
        match self {
            StartError::Parameter(message) => Error::BadParameter(message),
            StartError::Query(error) => error,
        }
    }

    fn for_execute(self) -> Error {
        match self {
            StartError::Parameter(message) => Error::ValueConversionFailed(message),
            StartError::Query(error) => error,
        }
    }
}

/// Prepares the statement (cached per connection) and binds the parameters
/// as the types the server expects.
async fn prepare(
    connection: &mut PgConnection,
    statement: &str,
    params: Vec<ParameterValue>,
) -> Result<(Vec<Column>, PgArguments), StartError> {
    let prepared = connection
        .prepare(statement)
        .await
        .map_err(|e| StartError::Query(query_error(e)))?;
    let expected = match prepared.parameters() {
        Some(Either::Left(types)) => types.to_vec(),
        Some(Either::Right(count)) => vec![sqlx::postgres::PgTypeInfo::with_name("TEXT"); count],
        None => Vec::new(),
    };
    if expected.len() != params.len() {
        return Err(StartError::Parameter(format!(
            "the statement has {} parameter(s), {} given",
            expected.len(),
            params.len()
        )));
    }
    let mut arguments = PgArguments::default();
    for (index, (ty, value)) in expected.iter().zip(params).enumerate() {
        types::bind(&mut arguments, index + 1, ty, value).map_err(StartError::Parameter)?;
    }
    Ok((types::columns(prepared.columns()), arguments))
}

async fn query_all(
    connection: Connection,
    statement: String,
    params: Vec<ParameterValue>,
    limit: usize,
) -> Result<RowSet, Error> {
    let mut leased = connection.lock().await;
    leased
        .run(&statement, async |connection| {
            let (columns, arguments) = prepare(connection, &statement, params)
                .await
                .map_err(StartError::for_query)?;
            let mut rows = Vec::new();
            let mut size = 0;
            let mut stream = sqlx::query_with(&statement, arguments).fetch(connection);
            while let Some(row) = stream.try_next().await.map_err(query_error)? {
                let row = types::row(&row).map_err(query_error)?;
                size += types::row_size(&row);
                if size > limit {
                    return Err(Error::QueryFailed(QueryError::Text(format!(
                        "query result exceeds limit of {limit} bytes"
                    ))));
                }
                rows.push(row);
            }
            Ok(RowSet { columns, rows })
        })
        .await
}

async fn execute(
    connection: Connection,
    statement: String,
    params: Vec<ParameterValue>,
) -> Result<u64, Error> {
    let mut leased = connection.lock().await;
    leased
        .run(&statement, async |connection| {
            let (_, arguments) = prepare(connection, &statement, params)
                .await
                .map_err(StartError::for_execute)?;
            sqlx::query_with(&statement, arguments)
                .execute(connection)
                .await
                .map(|done| done.rows_affected())
                .map_err(query_error)
        })
        .await
}

/// Starts a query whose rows flow to the guest as they arrive: a task reads
/// them from the server into a small channel the guest's stream drains.
async fn query_streaming(
    connection: Connection,
    statement: String,
    params: Vec<ParameterValue>,
    limit: usize,
) -> Result<
    (
        Vec<Column>,
        RowChannel,
        oneshot::Receiver<Result<(), Error>>,
    ),
    Error,
> {
    let mut leased: OwnedMutexGuard<Leased> = connection.lock_owned().await;
    // Tracked by hand: the statement outlives this call, in the task below.
    let effect = leased.session.starting(&statement);
    let prepared = match leased.connection() {
        Some(connection) => prepare(connection, &statement, params)
            .await
            .map_err(StartError::for_query),
        None => Err(released()),
    };
    let (columns, arguments) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            leased.finished(effect, Some(&error));
            return Err(error);
        }
    };
    let (rows_tx, rows_rx) = mpsc::channel(16);
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        let outcome = async {
            let connection = leased.connection().ok_or_else(released)?;
            let mut stream = sqlx::query_with(&statement, arguments).fetch(connection);
            while let Some(row) = stream.try_next().await.map_err(query_error)? {
                let row = types::row(&row).map_err(query_error)?;
                if types::row_size(&row) > limit {
                    return Err(Error::QueryFailed(QueryError::Text(format!(
                        "query result exceeds limit of {limit} bytes"
                    ))));
                }
                if rows_tx.send(row).await.is_err() {
                    // The guest dropped the stream: stop reading (sqlx
                    // drains the rest before the connection's next use).
                    break;
                }
            }
            Ok(())
        }
        .await;
        leased.finished(effect, outcome.as_ref().err());
        let _ = done_tx.send(outcome);
    });
    Ok((columns, RowChannel(rows_rx), done_rx))
}

/// The guest's end of a streaming query.
pub struct RowChannel(mpsc::Receiver<Row>);

impl<D> StreamProducer<D> for RowChannel {
    type Item = Row;
    type Buffer = Option<Row>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        _store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Row, Option<Row>>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        match self.0.poll_recv(cx) {
            Poll::Ready(Some(row)) => {
                destination.set_buffer(Some(row));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(None) => Poll::Ready(Ok(StreamResult::Dropped)),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn connection_of(
    table: &ResourceTable,
    handle: &Resource<OpenPgConnection>,
) -> wasmtime::Result<Connection> {
    Ok(table.get(handle)?.connection.clone())
}

fn push(
    table: &mut ResourceTable,
    outcome: Result<OpenPgConnection, Error>,
) -> wasmtime::Result<Result<Resource<OpenPgConnection>, Error>> {
    Ok(match outcome {
        Ok(connection) => Ok(table.push(connection)?),
        Err(e) => Err(e),
    })
}

impl<T: Send> postgres::HostConnectionBuilderWithStore<T> for Postgres {
    async fn drop(
        accessor: &Accessor<T, Self>,
        rep: Resource<PgConnectionBuilder>,
    ) -> wasmtime::Result<()> {
        accessor.with(|mut access| access.get().table.delete(rep).map(drop))?;
        Ok(())
    }

    async fn new(
        mut host: Access<'_, T, Self>,
        address: String,
    ) -> wasmtime::Result<Resource<PgConnectionBuilder>> {
        Ok(host.get().table.push(PgConnectionBuilder {
            address,
            ca_root: None,
        })?)
    }

    async fn set_ca_root(
        mut host: Access<'_, T, Self>,
        builder: Resource<PgConnectionBuilder>,
        certificate: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        if !certificate.contains("-----BEGIN CERTIFICATE-----") {
            return Ok(Err(Error::Other(
                "invalid root certificate: expected a PEM certificate".to_string(),
            )));
        }
        host.get().table.get_mut(&builder)?.ca_root = Some(certificate);
        Ok(Ok(()))
    }

    async fn build(
        mut host: Access<'_, T, Self>,
        builder: Resource<PgConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<OpenPgConnection>, Error>> {
        let view = host.get();
        let spec = view.table.get(&builder)?;
        let (address, ca_root) = (spec.address.clone(), spec.ca_root.clone());
        let grant = view.grant.clone();
        let outcome = open(grant, address, ca_root).await;
        push(host.get().table, outcome)
    }

    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<PgConnectionBuilder>,
    ) -> wasmtime::Result<Result<Resource<OpenPgConnection>, Error>> {
        let (grant, address, ca_root) = accessor.with(|mut access| {
            let view = access.get();
            let spec = view.table.get(&builder)?;
            Ok::<_, wasmtime::Error>((
                view.grant.clone(),
                spec.address.clone(),
                spec.ca_root.clone(),
            ))
        })?;
        let outcome = open(grant, address, ca_root).await;
        accessor.with(|mut access| push(access.get().table, outcome))
    }
}

impl<T: Send> postgres::HostConnectionWithStore<T> for Postgres {
    async fn drop(
        accessor: &Accessor<T, Self>,
        rep: Resource<OpenPgConnection>,
    ) -> wasmtime::Result<()> {
        let open = accessor.with(|mut access| access.get().table.delete(rep))?;
        release(open.connection).await;
        Ok(())
    }

    async fn open(
        mut host: Access<'_, T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenPgConnection>, Error>> {
        let grant = host.get().grant.clone();
        let outcome = open(grant, address, None).await;
        push(host.get().table, outcome)
    }

    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<OpenPgConnection>, Error>> {
        let grant = accessor.with(|mut access| access.get().grant.clone());
        let outcome = open(grant, address, None).await;
        accessor.with(|mut access| push(access.get().table, outcome))
    }

    async fn query(
        mut host: Access<'_, T, Self>,
        handle: Resource<OpenPgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, Error>> {
        let view = host.get();
        let connection = connection_of(view.table, &handle)?;
        let limit = view.grant.state.config().max_result_bytes;
        Ok(query_all(connection, statement, params, limit).await)
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenPgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<Column>,
                StreamReader<Row>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let (connection, limit) = accessor.with(|mut access| {
            let view = access.get();
            Ok::<_, wasmtime::Error>((
                connection_of(view.table, &handle)?,
                view.grant.state.config().max_result_bytes,
            ))
        })?;
        let (columns, rows, done) =
            match query_streaming(connection, statement, params, limit).await {
                Ok(started) => started,
                Err(e) => return Ok(Err(e)),
            };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async move {
                Ok::<_, wasmtime::Error>(done.await.unwrap_or(Ok(())))
            })?;
            Ok(Ok((columns, rows, done)))
        })
    }

    async fn execute(
        mut host: Access<'_, T, Self>,
        handle: Resource<OpenPgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let connection = connection_of(host.get().table, &handle)?;
        Ok(execute(connection, statement, params).await)
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenPgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, Error>> {
        let connection = accessor.with(|mut access| connection_of(access.get().table, &handle))?;
        Ok(execute(connection, statement, params).await)
    }
}
