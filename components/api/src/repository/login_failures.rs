//! The `login_failures` table: one row per throttled key (e.g.
//! `pair:<client>|<user>`, `user:<name>`) with the attempts counted in its
//! current window. Each attempt is counted *before* its password is checked,
//! by one atomic upsert (`INSERT … ON CONFLICT DO UPDATE … WHERE failures <
//! max RETURNING`), so parallel guessing cannot slip past the limit. A window
//! restarts once it has lasted its length. The policy is in
//! [`crate::auth::throttle`].

use crate::storage::{Database, DbError, Dialect, Value};

/// At most this many ended windows are deleted per [`purge`]: bounded work on
/// the login path. Each purge runs when a reservation opens a window (a row
/// at most), so ended rows still go at least as fast as they come.
pub const PURGE_BATCH: i64 = 100;

/// Seconds until the window that started at `column` has lasted `$n` seconds
/// (0 when it has), in the dialect's SQL.
fn seconds_left(dialect: Dialect, column: &str, n: usize) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "GREATEST(0, CEIL(EXTRACT(EPOCH FROM ({column} + make_interval(secs => {}::int8) - now()))))::int8",
            dialect.param(n)
        ),
        Dialect::Sqlite => format!(
            "MAX(0, CAST(((julianday({column}) - julianday('now')) * 86400 + {} + 0.999) AS INTEGER))",
            dialect.param(n)
        ),
    }
}

/// The `n`th parameter as a 64-bit integer. Postgres infers a parameter's
/// type from where it stands (`failures < $3`: int4), and the hosts bind an
/// integer as int8 only where int8 is expected, so integers are cast.
fn int8(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Postgres => format!("{}::int8", dialect.param(n)),
        Dialect::Sqlite => dialect.param(n),
    }
}

/// `now - $n seconds`, as the schema stores timestamps.
fn seconds_ago(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Postgres => format!("now() - make_interval(secs => {}::int8)", dialect.param(n)),
        Dialect::Sqlite => format!(
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', {}))",
            dialect.param(n)
        ),
    }
}

/// A limit on one key: at most `max` attempts per window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Attempts allowed in one window (at least 1).
    pub max: i64,
    /// How long a window lasts, from its first attempt.
    pub window_secs: i64,
}

/// What [`reserve`] made of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted, within the limit: the password may be checked.
    Counted {
        /// Attempts in the current window, this one included.
        number: i64,
        /// Seconds until the window ends.
        window_left_secs: i64,
        /// This attempt opened the window (a new key, or one whose window had
        /// ended): the moment to [`purge`] ended windows.
        opened_window: bool,
    },
    /// The key already had `max` attempts in its window; nothing was counted.
    Refused {
        /// Seconds until the window ends (an honest `Retry-After`).
        window_left_secs: i64,
    },
}

/// Counts an attempt for `key` before its password is checked, in one atomic
/// upsert that counts only while the key is within `limit` (or its window has
/// ended, which restarts it): however many guesses arrive at once, at most
/// `limit.max` of them in a window are counted, so no burst gets more password
/// checks than that. A refused attempt changes nothing, so it cannot push a
/// concurrent attempt over the limit. An attempt that turns out not to be a
/// failure is given back with [`refund`] (or [`clear`]).
pub async fn reserve<D: Database>(db: &D, key: &str, limit: Limit) -> Result<Reservation, DbError> {
    let d = db.dialect();
    let now = d.now();
    let ended = format!(
        "{} = 0",
        seconds_left(d, "login_failures.window_started_at", 2)
    );
    // Postgres' now() and SQLite's 'now' are fixed for the whole statement,
    // so a window opened here started exactly at `now`.
    let sql = format!(
        "INSERT INTO login_failures (key, failures, window_started_at) VALUES ({key}, 1, {now}) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN {ended} THEN 1 ELSE login_failures.failures + 1 END, \
         window_started_at = CASE WHEN {ended} THEN {now} ELSE login_failures.window_started_at END \
         WHERE {ended} OR login_failures.failures < {max} \
         RETURNING failures, {left}, CASE WHEN window_started_at = {now} THEN 1 ELSE 0 END",
        key = d.param(1),
        max = int8(d, 3),
        left = seconds_left(d, "window_started_at", 2),
    );
    let params = [
        Value::from(key),
        Value::Int(limit.window_secs),
        Value::Int(limit.max),
    ];
    let counted = db.query(&sql, &params).await?;
    if let Some(row) = counted.into_iter().next() {
        let int = |i: usize| row.get(i).and_then(Value::as_i64);
        return match (int(0), int(1), int(2)) {
            (Some(number), Some(window_left_secs), Some(opened)) => Ok(Reservation::Counted {
                number,
                window_left_secs,
                opened_window: opened == 1,
            }),
            _ => Err(DbError::Other("attempt count not returned".into())),
        };
    }
    // Not counted: the key is at its limit. How long the window has left is
    // read separately; a row cleared meanwhile has no time left.
    let left = db
        .query(
            &format!(
                "SELECT {} FROM login_failures WHERE key = {}",
                seconds_left(d, "window_started_at", 2),
                d.param(1)
            ),
            &params[..2],
        )
        .await?;
    Ok(Reservation::Refused {
        window_left_secs: left
            .first()
            .and_then(|row| row.first())
            .and_then(Value::as_i64)
            .unwrap_or(0),
    })
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

/// Deletes up to [`PURGE_BATCH`] rows whose window started more than
/// `older_than_secs` ago (the longest window in use: their windows have
/// ended, so they throttle nothing). The oldest go first, found through the
/// index on `window_started_at`. On Postgres, rows another transaction holds
/// are skipped rather than waited for, so concurrent purges and reservations
/// never wait on each other in a cycle. Returns how many were deleted.
pub async fn purge<D: Database>(db: &D, older_than_secs: i64) -> Result<u64, DbError> {
    let d = db.dialect();
    let skip_locked = match d {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    };
    db.execute(
        &format!(
            "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures \
             WHERE window_started_at < {} ORDER BY window_started_at LIMIT {}{skip_locked})",
            seconds_ago(d, 1),
            int8(d, 2)
        ),
        &[Value::Int(older_than_secs), Value::Int(PURGE_BATCH)],
    )
    .await
}
