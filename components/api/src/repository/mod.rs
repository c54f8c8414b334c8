//! Every SQL statement the API runs, in both dialects, one module per table
//! (or aggregate): nothing outside this module writes SQL. Each function
//! takes any [`crate::storage::Database`].

pub mod items;
pub mod login_failures;
pub mod schema;
pub mod sessions;
pub mod users;

use crate::storage::{Database, DbError, Value};

/// A round trip to the database (`SELECT 1`), for health probes.
pub async fn ping<D: Database>(db: &D) -> Result<(), DbError> {
    let rows = db.query("SELECT 1", &[]).await?;
    match rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_i64)
    {
        Some(1) => Ok(()),
        _ => Err(DbError::Other(format!("SELECT 1 answered {rows:?}"))),
    }
}
