//! The `Database` interface over spin-sdk's connections: the embedded SQLite
//! `default` database when `database_url` is empty, Postgres for a
//! `postgres://` URL. Only for components (wasm32).

use spin_sdk::pg::{self, DbValue, ParameterValue, PgError, QueryError};
use spin_sdk::sqlite;

use super::{Database, DatabaseUrl, DbError, Dialect, Value};

pub enum SpinDatabase {
    Postgres(pg::Connection),
    Sqlite(sqlite::Connection),
}

impl SpinDatabase {
    pub async fn open(database_url: &str) -> Result<Self, DbError> {
        match DatabaseUrl::parse(database_url)? {
            DatabaseUrl::EmbeddedSqlite => sqlite::Connection::open_default()
                .await
                .map(SpinDatabase::Sqlite)
                .map_err(|e| DbError::Unavailable(format!("sqlite: {e}"))),
            DatabaseUrl::Postgres(url) => pg::Connection::open(url)
                .await
                .map(SpinDatabase::Postgres)
                .map_err(|e| DbError::Unavailable(format!("postgres: {e}"))),
        }
    }
}

fn pg_param(value: &Value) -> ParameterValue {
    match value {
        Value::Null => ParameterValue::DbNull,
        Value::Int(i) => ParameterValue::Int64(*i),
        Value::Bool(b) => ParameterValue::Boolean(*b),
        Value::Text(t) => ParameterValue::Str(t.clone()),
    }
}

fn pg_value(value: &DbValue) -> Value {
    match value {
        DbValue::DbNull => Value::Null,
        DbValue::Boolean(b) => Value::Bool(*b),
        DbValue::Int8(i) => Value::Int(i64::from(*i)),
        DbValue::Int16(i) => Value::Int(i64::from(*i)),
        DbValue::Int32(i) => Value::Int(i64::from(*i)),
        DbValue::Int64(i) => Value::Int(*i),
        DbValue::Str(s) | DbValue::Decimal(s) | DbValue::Uuid(s) => Value::Text(s.clone()),
        other => Value::Text(format!("{other:?}")),
    }
}

fn pg_error(error: PgError) -> DbError {
    match error {
        PgError::ConnectionFailed(m) => DbError::Unavailable(m),
        PgError::QueryFailed(QueryError::DbError(e)) if e.code == "23505" => {
            DbError::UniqueViolation(
                e.extras
                    .iter()
                    .find(|(k, _)| k == "constraint")
                    .map(|(_, v)| v.clone())
                    .unwrap_or(e.message),
            )
        }
        PgError::QueryFailed(QueryError::DbError(e)) if super::server_unavailable(&e.code) => {
            DbError::Unavailable(format!("{} ({})", e.message, e.code))
        }
        PgError::QueryFailed(QueryError::DbError(e)) => {
            DbError::Other(format!("{} ({})", e.message, e.code))
        }
        other => DbError::Other(other.to_string()),
    }
}

fn sqlite_param(value: &Value) -> sqlite::Value {
    match value {
        Value::Null => sqlite::Value::Null,
        Value::Int(i) => sqlite::Value::Integer(*i),
        Value::Bool(b) => sqlite::Value::Integer(i64::from(*b)),
        Value::Text(t) => sqlite::Value::Text(t.clone()),
    }
}

fn sqlite_value(value: &sqlite::Value) -> Value {
    match value {
        sqlite::Value::Null => Value::Null,
        sqlite::Value::Integer(i) => Value::Int(*i),
        sqlite::Value::Real(f) => Value::Text(f.to_string()),
        sqlite::Value::Text(t) => Value::Text(t.clone()),
        sqlite::Value::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
    }
}

fn sqlite_error(error: sqlite::Error) -> DbError {
    match error {
        sqlite::Error::Io(m) if m.contains("UNIQUE constraint failed") => {
            DbError::UniqueViolation(m)
        }
        sqlite::Error::NoSuchDatabase | sqlite::Error::AccessDenied => {
            DbError::Unavailable(format!("{error:?}"))
        }
        other => DbError::Other(format!("{other:?}")),
    }
}

impl Database for SpinDatabase {
    fn dialect(&self) -> Dialect {
        match self {
            SpinDatabase::Postgres(_) => Dialect::Postgres,
            SpinDatabase::Sqlite(_) => Dialect::Sqlite,
        }
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            SpinDatabase::Postgres(c) => c
                .execute(sql, params.iter().map(pg_param).collect::<Vec<_>>())
                .await
                .map_err(|e| match e {
                    pg::Error::PgError(e) => pg_error(e),
                    other => DbError::Other(other.to_string()),
                }),
            SpinDatabase::Sqlite(c) => {
                c.execute(sql, params.iter().map(sqlite_param))
                    .await
                    .map_err(sqlite_error)?
                    .collect()
                    .await
                    .map_err(sqlite_error)?;
                Ok(c.changes().await)
            }
        }
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        match self {
            SpinDatabase::Postgres(c) => {
                let map = |e: pg::Error| match e {
                    pg::Error::PgError(e) => pg_error(e),
                    other => DbError::Other(other.to_string()),
                };
                let mut result = c
                    .query(sql, params.iter().map(pg_param).collect::<Vec<_>>())
                    .await
                    .map_err(map)?;
                let width = result.columns().len();
                let mut rows = Vec::new();
                while let Some(row) = result.next().await {
                    rows.push((0..width).map(|i| pg_value(&row[i])).collect());
                }
                result.result().await.map_err(map)?;
                Ok(rows)
            }
            SpinDatabase::Sqlite(c) => {
                let result = c
                    .execute(sql, params.iter().map(sqlite_param))
                    .await
                    .map_err(sqlite_error)?;
                let width = result.columns().len();
                let rows = result.collect().await.map_err(sqlite_error)?;
                Ok(rows
                    .iter()
                    .map(|row| {
                        (0..width)
                            .map(|i| {
                                row.get::<&sqlite::Value>(i)
                                    .map(sqlite_value)
                                    .unwrap_or(Value::Null)
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }
}
