//! The `login_failures` table: one row per throttled key (`user:<name>`,
//! `addr:<host>`). Each attempt is counted *before* its password is checked,
//! by one atomic upsert (`INSERT … ON CONFLICT DO UPDATE SET n = n + 1
//! RETURNING`), so parallel guessing cannot slip past the limit. A window
//! restarts once its lockout has passed. The policy is in
//! [`crate::auth::throttle`].

use crate::storage::{Database, DbError, Dialect, Value};

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

/// One login attempt, counted against a key before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Attempts in the current window, this one included.
    pub number: i64,
    /// Seconds until the window (and so any lockout) ends.
    pub window_left_secs: i64,
}

/// Counts an attempt for `key` (e.g. `user:alice`, `addr:10.0.0.1`) before
/// its password is checked, in one atomic upsert: however many guesses
/// arrive at once, at most `max_failures` of them in a window are numbered
/// within the limit, so no burst gets more password checks than that. A
/// window restarts once `lockout_secs` have passed since it began. An attempt
/// that turns out not to be a failure is given back with [`refund`] (or
/// [`clear`]).
pub async fn reserve<D: Database>(
    db: &D,
    key: &str,
    lockout_secs: i64,
) -> Result<Attempt, DbError> {
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
         RETURNING failures, {left}",
        key = d.param(1),
        left = seconds_left(d, 2),
    );
    let row = db
        .query(&sql, &[Value::from(key), Value::Int(lockout_secs)])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| DbError::Other("attempt count not returned".into()))?;
    match (
        row.first().and_then(Value::as_i64),
        row.get(1).and_then(Value::as_i64),
    ) {
        (Some(number), Some(window_left_secs)) => Ok(Attempt {
            number,
            window_left_secs,
        }),
        _ => Err(DbError::Other("attempt count not returned".into())),
    }
}

/// Gives back one attempt of `key` that was not a failure.
pub async fn refund<D: Database>(db: &D, key: &str) -> Result<(), DbError> {
    let d = db.dialect();
    db.execute(
        &format!(
            "UPDATE login_failures SET failures = failures - 1 WHERE key = {} AND failures > 0",
            d.param(1)
        ),
        &[Value::from(key)],
    )
    .await
    .map(drop)
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
