//! The small database interface the repository is written against, and its
//! adapters: [`spin`] over spin-sdk's Postgres and SQLite connections (in
//! components, wasm32) and, with the `native` feature, `native` over sqlx
//! (Postgres) and rusqlite (SQLite) for native tools and tests. The same SQL
//! runs through all of them.

use std::fmt;

#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod spin;

/// What a `database_url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseUrl<'a> {
    /// Empty: the embedded SQLite `default` database.
    EmbeddedSqlite,
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(&'a str),
}

impl<'a> DatabaseUrl<'a> {
    pub fn parse(database_url: &'a str) -> Result<Self, DbError> {
        let url = database_url.trim();
        if url.is_empty() {
            Ok(DatabaseUrl::EmbeddedSqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url))
        } else {
            Err(DbError::Other(
                "database_url must be empty (embedded SQLite) or a postgres:// URL".into(),
            ))
        }
    }
}

/// Which SQL the repository speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The `n`th (1-based) parameter placeholder: `$n` or `?n`.
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// A boolean literal.
    pub fn truth(self, value: bool) -> &'static str {
        match (self, value) {
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
        }
    }

    /// The current time, as the schema stores timestamps.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "now()",
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        }
    }
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Text(t) => t.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            Value::Text(t) => Some(t),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Postgres SQLSTATEs that say the server cannot serve the session now:
/// connection exceptions (08), operator intervention such as a shutdown
/// (57), too many connections (53300). Unavailable (503), not a bug of ours;
/// both adapters classify server errors by it.
pub(crate) fn server_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57") || code == "53300"
}

/// Why a statement failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The database cannot be reached (→ 503).
    Unavailable(String),
    /// A unique constraint was violated; the constraint's name when known.
    UniqueViolation(String),
    /// Anything else (→ 500, logged).
    Other(String),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            DbError::UniqueViolation(m) => write!(f, "unique violation: {m}"),
            DbError::Other(m) => write!(f, "database error: {m}"),
        }
    }
}

/// One connection's worth of SQL: statements run in order on it, so a
/// `BEGIN` ... `COMMIT` around them is one transaction.
// Components are single-threaded wasm; no `Send` bound is wanted.
#[allow(async_fn_in_trait)]
pub trait Database {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the rows it affected.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs a query; returns its rows.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError>;
}
