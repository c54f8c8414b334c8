//! The `Database` interface natively, for tools and tests outside wasm (a
//! `db migrate` command, a native twin of the server): Postgres through sqlx,
//! SQLite through rusqlite.
//!
//! rusqlite rather than sqlx's SQLite driver: it is the driver the host
//! already serves components' `spin:sqlite` databases with (same crate, same
//! bundled SQLite), so SQL that passes here passes there, and the workspace
//! keeps one SQLite library. It is synchronous; each statement runs to
//! completion under the connection's lock, inline. That suits a CLI and
//! tests, and the twin's SQLite serving too: the statements are point
//! queries of microseconds, as the host's key-value store runs them (a hop to
//! the blocking pool would cost more than the query). Postgres is the
//! twin's benchmark backend.
//!
//! A server takes one connection per request: [`SqlitePool`] (idle
//! connections of one file) and [`PostgresDatabase::pooled`] (a connection
//! from the caller's pool), since the statements of one request are one
//! connection's (a `BEGIN` … `COMMIT` must not interleave with another
//! request's).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::{Column, Connection, Executor, Row, Statement, TypeInfo, ValueRef};

use super::{Database, DbError, Dialect, Value};

/// How long an SQLite statement waits for another connection's lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A native database chosen by URL: `postgres://…` (or `postgresql://…`), or
/// `sqlite://<path>` / `sqlite:<path>` for an SQLite file.
pub enum NativeDatabase {
    Postgres(PostgresDatabase),
    Sqlite(SqliteDatabase),
}

impl NativeDatabase {
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PostgresDatabase::connect(url)
                .await
                .map(NativeDatabase::Postgres)
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            SqliteDatabase::open(Path::new(path)).map(NativeDatabase::Sqlite)
        } else {
            Err(DbError::Other(
                "a database URL must be postgres://… or sqlite://<path>".into(),
            ))
        }
    }
}

impl Database for NativeDatabase {
    fn dialect(&self) -> Dialect {
        match self {
            NativeDatabase::Postgres(db) => db.dialect(),
            NativeDatabase::Sqlite(db) => db.dialect(),
        }
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            NativeDatabase::Postgres(db) => db.execute(sql, params).await,
            NativeDatabase::Sqlite(db) => db.execute(sql, params).await,
        }
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        match self {
            NativeDatabase::Postgres(db) => db.query(sql, params).await,
            NativeDatabase::Sqlite(db) => db.query(sql, params).await,
        }
    }
}

// ---- SQLite ------------------------------------------------------------------

/// One SQLite connection to a file, with foreign keys enforced (as the host's
/// `spin:sqlite` databases do). Taken from a [`SqlitePool`], it goes back
/// there when dropped.
pub struct SqliteDatabase {
    /// `None` only while it is being dropped.
    connection: Mutex<Option<rusqlite::Connection>>,
    home: Option<Arc<SqlitePool>>,
}

impl SqliteDatabase {
    /// Opens (creating if need be) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        Ok(Self {
            connection: Mutex::new(Some(sqlite_connect(path)?)),
            home: None,
        })
    }

    fn with_connection<T>(
        &self,
        call: impl FnOnce(&rusqlite::Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let connection = self
            .connection
            .lock()
            .map_err(|_| DbError::Other("sqlite connection poisoned by a panic".into()))?;
        match connection.as_ref() {
            Some(connection) => call(connection),
            None => Err(DbError::Other("sqlite connection already released".into())),
        }
    }
}

impl Drop for SqliteDatabase {
    fn drop(&mut self) {
        let connection = self.connection.get_mut().ok().and_then(Option::take);
        if let (Some(home), Some(connection)) = (&self.home, connection) {
            home.release(connection);
        }
    }
}

fn sqlite_connect(path: &Path) -> Result<rusqlite::Connection, DbError> {
    let unavailable =
        |e: rusqlite::Error| DbError::Unavailable(format!("sqlite {}: {e}", path.display()));
    let connection = rusqlite::Connection::open(path).map_err(unavailable)?;
    connection
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .map_err(unavailable)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(unavailable)?;
    Ok(connection)
}

/// Idle connections kept by a [`SqlitePool`].
const SQLITE_MAX_IDLE: usize = 32;

/// Connections to one SQLite file for a server: each request takes one
/// (an idle one, or a new one) and gives it back when done, unless it was
/// left inside a transaction. Connections use WAL, as the host's do, so
/// `nexa up` and the twin can share the file.
pub struct SqlitePool {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqlitePool {
    /// Opens one connection now, so a bad path fails at start-up.
    pub fn open(path: &Path) -> Result<Arc<Self>, DbError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                DbError::Unavailable(format!("sqlite: creating {}: {e}", dir.display()))
            })?;
        }
        let pool = Arc::new(Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        });
        let first = pool.connect()?;
        pool.release(first);
        Ok(pool)
    }

    fn connect(&self) -> Result<rusqlite::Connection, DbError> {
        let connection = sqlite_connect(&self.path)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| DbError::Unavailable(format!("sqlite {}: {e}", self.path.display())))?;
        Ok(connection)
    }

    /// A connection for one request.
    pub fn acquire(self: &Arc<Self>) -> Result<SqliteDatabase, DbError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect()?,
        };
        Ok(SqliteDatabase {
            connection: Mutex::new(Some(connection)),
            home: Some(self.clone()),
        })
    }

    fn release(&self, connection: rusqlite::Connection) {
        if !connection.is_autocommit() {
            // Left inside a transaction: closing it rolls back.
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < SQLITE_MAX_IDLE
        {
            idle.push(connection);
        }
    }
}

fn sqlite_error(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, message)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            DbError::UniqueViolation(message.clone().unwrap_or_default())
        }
        _ => DbError::Other(e.to_string()),
    }
}

fn sqlite_params(params: &[Value]) -> impl rusqlite::Params + '_ {
    rusqlite::params_from_iter(params.iter().map(|v| match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
        Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
    }))
}

fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Value::Text(String::from_utf8_lossy(t).into_owned())
        }
    }
}

impl Database for SqliteDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.with_connection(|connection| {
            connection
                .execute(sql, sqlite_params(params))
                .map(|n| n as u64)
                .map_err(sqlite_error)
        })
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        self.with_connection(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(sqlite_error)?;
            let width = statement.column_count();
            let mut rows = statement
                .query(sqlite_params(params))
                .map_err(sqlite_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite_error)? {
                out.push(
                    (0..width)
                        .map(|i| row.get_ref(i).map(sqlite_value).map_err(sqlite_error))
                        .collect::<Result<_, _>>()?,
                );
            }
            Ok(out)
        })
    }
}

// ---- Postgres ------------------------------------------------------------------

/// One Postgres connection, of its own or from a pool (given back when
/// dropped); statements run in order on it, so `BEGIN` … `COMMIT` around
/// them is one transaction.
pub struct PostgresDatabase(tokio::sync::Mutex<PgHandle>);

enum PgHandle {
    Own(PgConnection),
    Pooled(Box<dyn std::ops::DerefMut<Target = PgConnection> + Send>),
}

impl PgHandle {
    fn connection(&mut self) -> &mut PgConnection {
        match self {
            PgHandle::Own(connection) => connection,
            PgHandle::Pooled(connection) => connection,
        }
    }
}

impl PostgresDatabase {
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        PgConnection::connect(url)
            .await
            .map(|c| Self(tokio::sync::Mutex::new(PgHandle::Own(c))))
            .map_err(|e| DbError::Unavailable(format!("postgres: {e}")))
    }

    /// A connection taken from a pool for one request (the pool's guard,
    /// which gives it back when dropped).
    pub fn pooled(
        connection: impl std::ops::DerefMut<Target = PgConnection> + Send + 'static,
    ) -> Self {
        Self(tokio::sync::Mutex::new(PgHandle::Pooled(Box::new(
            connection,
        ))))
    }
}

fn pg_error(e: sqlx::Error) -> DbError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            DbError::UniqueViolation(db.constraint().unwrap_or_default().to_string())
        }
        sqlx::Error::Database(db) if super::server_unavailable(&db.code().unwrap_or_default()) => {
            DbError::Unavailable(format!(
                "{} ({})",
                db.message(),
                db.code().unwrap_or_default()
            ))
        }
        sqlx::Error::Database(db) => DbError::Other(format!(
            "{} ({})",
            db.message(),
            db.code().unwrap_or_default()
        )),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => DbError::Unavailable(e.to_string()),
        _ => DbError::Other(e.to_string()),
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, PgArguments>;

/// Prepares the statement and binds each value as the type the server
/// inferred for its parameter (as the Nexa host does for guests).
async fn typed<'q>(
    connection: &mut PgConnection,
    sql: &'q str,
    params: &[Value],
) -> Result<PgQuery<'q>, DbError> {
    let statement = (&mut *connection).prepare(sql).await.map_err(pg_error)?;
    let types: Vec<String> = match statement.parameters() {
        Some(sqlx::Either::Left(types)) => types.iter().map(|t| t.name().to_string()).collect(),
        _ => Vec::new(),
    };
    let mut query = sqlx::query(sql);
    for (value, ty) in params.iter().zip(types) {
        query = match (value, ty.as_str()) {
            (Value::Null, "INT8") => query.bind(None::<i64>),
            (Value::Null, "BOOL") => query.bind(None::<bool>),
            (Value::Null, _) => query.bind(None::<String>),
            (Value::Int(i), "INT4") => query.bind(i32::try_from(*i).map_err(out_of_range)?),
            (Value::Int(i), "INT2") => query.bind(i16::try_from(*i).map_err(out_of_range)?),
            (Value::Int(i), _) => query.bind(*i),
            (Value::Bool(b), _) => query.bind(*b),
            (Value::Text(t), _) => query.bind(t.clone()),
        };
    }
    Ok(query)
}

fn out_of_range(e: std::num::TryFromIntError) -> DbError {
    DbError::Other(format!("parameter out of range: {e}"))
}

fn pg_row(row: &sqlx::postgres::PgRow) -> Result<Vec<Value>, DbError> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            if row.try_get_raw(i).map_err(pg_error)?.is_null() {
                return Ok(Value::Null);
            }
            Ok(match column.type_info().name() {
                "INT8" => Value::Int(row.try_get(i).map_err(pg_error)?),
                "INT4" => Value::Int(i64::from(row.try_get::<i32, _>(i).map_err(pg_error)?)),
                "INT2" => Value::Int(i64::from(row.try_get::<i16, _>(i).map_err(pg_error)?)),
                "BOOL" => Value::Bool(row.try_get(i).map_err(pg_error)?),
                _ => Value::Text(row.try_get(i).map_err(pg_error)?),
            })
        })
        .collect()
}

impl Database for PostgresDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut handle = self.0.lock().await;
        let connection = handle.connection();
        let done = if params.is_empty() {
            // The simple protocol: BEGIN, COMMIT, DDL.
            connection.execute(sqlx::raw_sql(sql)).await
        } else {
            typed(connection, sql, params)
                .await?
                .execute(&mut *connection)
                .await
        };
        done.map(|r| r.rows_affected()).map_err(pg_error)
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        let mut handle = self.0.lock().await;
        let connection = handle.connection();
        let rows = typed(connection, sql, params)
            .await?
            .fetch_all(&mut *connection)
            .await
            .map_err(pg_error)?;
        rows.iter().map(pg_row).collect()
    }
}
