//! Failed-login throttling, per username and per client address. Counting is
//! one atomic upsert (`INSERT … ON CONFLICT DO UPDATE SET n = n + 1
//! RETURNING`), so parallel guessing cannot slip past the limit; a window
//! restarts once its lockout has passed.

use crate::db::{Database, DbError, Dialect, Value};

/// Seconds until the window that started at `window_started_at` has lasted
/// `$n` seconds (0 when it has), in the dialect's SQL.
fn seconds_left(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "GREATEST(0, CEIL(EXTRACT(EPOCH FROM (window_started_at + make_interval(secs => {}::int8) - now()))))::int8",
            dialect.param(n)
        ),
        Dialect::Sqlite => format!(
            "MAX(0, CAST(((julianday(window_started_at) - julianday('now')) * 86400 + {} + 0.999) AS INTEGER))",
            dialect.param(n)
        ),
    }
}

/// When `key` (e.g. `user:alice`, `addr:10.0.0.1`) has failed `max_failures`
/// times within the lockout, the seconds until it may try again.
pub async fn locked_for<D: Database>(
    db: &D,
    key: &str,
    max_failures: i64,
    lockout_secs: i64,
) -> Result<Option<i64>, DbError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT failures, {} FROM login_failures WHERE key = {}",
        seconds_left(d, 2),
        d.param(1)
    );
    let rows = db
        .query(&sql, &[Value::from(key), Value::Int(lockout_secs)])
        .await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let failures = row.first().and_then(Value::as_i64).unwrap_or(0);
    let left = row.get(1).and_then(Value::as_i64).unwrap_or(0);
    Ok((failures >= max_failures && left > 0).then_some(left))
}

/// Counts one failure for `key`; returns the failures in the current window.
pub async fn record_failure<D: Database>(
    db: &D,
    key: &str,
    lockout_secs: i64,
) -> Result<i64, DbError> {
    let d = db.dialect();
    let now = d.now();
    let expired = format!(
        "{} = 0",
        seconds_left(d, 2).replace("window_started_at", "login_failures.window_started_at")
    );
    let sql = format!(
        "INSERT INTO login_failures (key, failures, window_started_at) VALUES ({key}, 1, {now}) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN {expired} THEN 1 ELSE login_failures.failures + 1 END, \
         window_started_at = CASE WHEN {expired} THEN {now} ELSE login_failures.window_started_at END \
         RETURNING failures",
        key = d.param(1),
    );
    db.query(&sql, &[Value::from(key), Value::Int(lockout_secs)])
        .await?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .and_then(|v| v.as_i64())
        .ok_or_else(|| DbError::Other("failure count not returned".into()))
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear<D: Database>(db: &D, key: &str) -> Result<(), DbError> {
    let d = db.dialect();
    db.execute(
        &format!("DELETE FROM login_failures WHERE key = {}", d.param(1)),
        &[Value::from(key)],
    )
    .await
    .map(drop)
}
