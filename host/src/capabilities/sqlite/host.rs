use std::sync::{Arc, Mutex};

use wasmtime::component::{
    Access, Accessor, FutureReader, HasData, Resource, ResourceTable, StreamReader,
};

use super::state::{SqliteDatabase, SqliteGrant};
use crate::spin_bindings::spin::sqlite::sqlite::{self, Error, QueryResult, RowResult, Value};

/// A connection the guest opened. The SQLite connection goes back to the
/// database's idle list when the guest drops it.
pub struct OpenConnection {
    database: Arc<SqliteDatabase>,
    connection: Arc<Mutex<Option<rusqlite::Connection>>>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.lock().ok().and_then(|mut c| c.take()) {
            self.database.release(connection);
        }
    }
}

/// The `spin:sqlite` implementation.
pub struct Sqlite;

/// What the SQLite host sees of a store's data.
pub struct SqliteView<'a> {
    pub table: &'a mut ResourceTable,
    pub grant: &'a SqliteGrant,
}

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

impl sqlite::Host for SqliteView<'_> {}
impl sqlite::HostConnection for SqliteView<'_> {}

fn open(
    view: SqliteView<'_>,
    label: &str,
) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
    if !view.grant.allowed.contains(label) {
        return Ok(Err(Error::AccessDenied));
    }
    let Some(database) = view.grant.state.database(label) else {
        return Ok(Err(Error::NoSuchDatabase));
    };
    let connection = match database.acquire() {
        Ok(connection) => connection,
        Err(e) => return Ok(Err(Error::Io(e.to_string()))),
    };
    let handle = view.table.push(OpenConnection {
        database,
        connection: Arc::new(Mutex::new(Some(connection))),
    })?;
    Ok(Ok(handle))
}

type SharedConnection = Arc<Mutex<Option<rusqlite::Connection>>>;

fn shared(
    table: &ResourceTable,
    handle: &Resource<OpenConnection>,
) -> wasmtime::Result<SharedConnection> {
    Ok(table.get(handle)?.connection.clone())
}

/// Runs a call on the guest's connection off the async threads.
async fn with_connection<R: Send + 'static>(
    connection: SharedConnection,
    call: impl FnOnce(&rusqlite::Connection) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(move || {
        let guard = connection.lock().map_err(|_| Error::InvalidConnection)?;
        let connection = guard.as_ref().ok_or(Error::InvalidConnection)?;
        call(connection)
    })
    .await
    .unwrap_or_else(|e| Err(Error::Io(e.to_string())))
}

fn execute(
    connection: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<Value>,
) -> Result<QueryResult, Error> {
    // A refusal by the sandbox reads better than SQLite's "not authorized".
    super::sandbox::take_denial();
    let io = |e: rusqlite::Error| {
        Error::Io(super::sandbox::take_denial().unwrap_or_else(|| e.to_string()))
    };
    let mut prepared = connection.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = prepared
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let parameters: Vec<rusqlite::types::Value> = parameters.into_iter().map(to_sql).collect();
    let mut rows = prepared
        .query(rusqlite::params_from_iter(parameters))
        .map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(from_sql).map_err(io))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(RowResult { values });
    }
    Ok(QueryResult { columns, rows: out })
}

fn to_sql(value: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Integer(i) => Sql::Integer(i),
        Value::Real(f) => Sql::Real(f),
        Value::Text(s) => Sql::Text(s),
        Value::Blob(b) => Sql::Blob(b),
        Value::Null => Sql::Null,
    }
}

fn from_sql(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Null => Value::Null,
    }
}

impl<T: Send> sqlite::HostConnectionWithStore<T> for Sqlite {
    async fn drop(
        accessor: &Accessor<T, Self>,
        rep: Resource<OpenConnection>,
    ) -> wasmtime::Result<()> {
        accessor.with(|mut access| {
            access.get().table.delete(rep)?;
            Ok(())
        })
    }

    async fn open(
        mut host: Access<'_, T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        open(host.get(), &database)
    }

    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<OpenConnection>, Error>> {
        accessor.with(|mut access| open(access.get(), &database))
    }

    async fn execute(
        mut host: Access<'_, T, Self>,
        handle: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<Result<QueryResult, Error>> {
        let connection = shared(host.get().table, &handle)?;
        Ok(with_connection(connection, move |c| execute(c, &statement, parameters)).await)
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenConnection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> wasmtime::Result<
        Result<
            (
                Vec<String>,
                StreamReader<RowResult>,
                FutureReader<Result<(), Error>>,
            ),
            Error,
        >,
    > {
        let connection = accessor.with(|mut access| shared(access.get().table, &handle))?;
        let result =
            match with_connection(connection, move |c| execute(c, &statement, parameters)).await {
                Ok(result) => result,
                Err(e) => return Ok(Err(e)),
            };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, result.rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((result.columns, rows, done)))
        })
    }

    async fn last_insert_rowid(
        mut host: Access<'_, T, Self>,
        handle: Resource<OpenConnection>,
    ) -> wasmtime::Result<i64> {
        let connection = shared(host.get().table, &handle)?;
        Ok(with_connection(connection, |c| Ok(c.last_insert_rowid()))
            .await
            .unwrap_or(0))
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenConnection>,
    ) -> wasmtime::Result<i64> {
        let connection = accessor.with(|mut access| shared(access.get().table, &handle))?;
        Ok(with_connection(connection, |c| Ok(c.last_insert_rowid()))
            .await
            .unwrap_or(0))
    }

    async fn changes(
        mut host: Access<'_, T, Self>,
        handle: Resource<OpenConnection>,
    ) -> wasmtime::Result<u64> {
        let connection = shared(host.get().table, &handle)?;
        Ok(with_connection(connection, |c| Ok(c.changes()))
            .await
            .unwrap_or(0))
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        handle: Resource<OpenConnection>,
    ) -> wasmtime::Result<u64> {
        let connection = accessor.with(|mut access| shared(access.get().table, &handle))?;
        Ok(with_connection(connection, |c| Ok(c.changes()))
            .await
            .unwrap_or(0))
    }
}
