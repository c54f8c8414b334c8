//! Sessions and their refresh tokens. Each refresh is one atomic statement
//! (`UPDATE … WHERE NOT rotated RETURNING`), so of two concurrent refreshes
//! with one token exactly one wins; a token that was already rotated,
//! presented again, revokes its whole session. Logout revokes at once.
//!
//! A session has two ends: `expires_at`, which every refresh moves forward
//! by the refresh ttl, and `absolute_expires_at`, fixed when it is created,
//! which `expires_at` never passes: however often it is refreshed, a session
//! ends then.

use crate::storage::{Database, DbError, Dialect, Value};

/// `now + seconds` as the dialect's timestamp expression.
fn expires_in(dialect: Dialect, param: usize) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "now() + make_interval(secs => {}::int8)",
            dialect.param(param)
        ),
        Dialect::Sqlite => format!(
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('%+d seconds', {}))",
            dialect.param(param)
        ),
    }
}

/// Whole seconds from now until `column` (negative once it has passed), in
/// the dialect's SQL. Rounded down, so a cookie's `Max-Age` made from it
/// never outlives the session.
fn seconds_until(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("FLOOR(EXTRACT(EPOCH FROM ({column} - now())))::int8"),
        // CAST truncates toward zero: down, for the times that matter.
        Dialect::Sqlite => {
            format!("CAST((julianday({column}) - julianday('now')) * 86400 AS INTEGER)")
        }
    }
}

/// How long a new session lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Until the next refresh is due (`refresh_token_ttl_seconds`).
    pub ttl_secs: i64,
    /// The absolute end, however often it is refreshed
    /// (`refresh_session_max_seconds`).
    pub max_secs: i64,
}

impl Lifetime {
    /// What a new session's first refresh token is good for: its ttl, cut
    /// short by the absolute end.
    pub fn first_ttl_secs(&self) -> i64 {
        self.ttl_secs.min(self.max_secs)
    }
}

/// Opens a session with its first refresh token (stored by hash only).
pub async fn create<D: Database>(
    db: &D,
    session_id: &str,
    user_id: i64,
    refresh_hash: &str,
    lifetime: Lifetime,
) -> Result<(), DbError> {
    let d = db.dialect();
    // Both ends from the same `now` (fixed for the statement in both
    // dialects), so expires_at <= absolute_expires_at exactly.
    db.execute(
        &format!(
            "INSERT INTO sessions (id, user_id, expires_at, absolute_expires_at) VALUES ({}, {}, {}, {})",
            d.param(1),
            d.param(2),
            expires_in(d, 3),
            expires_in(d, 4)
        ),
        &[
            Value::from(session_id),
            Value::Int(user_id),
            Value::Int(lifetime.first_ttl_secs()),
            Value::Int(lifetime.max_secs),
        ],
    )
    .await?;
    db.execute(
        &format!(
            "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ({}, {})",
            d.param(1),
            d.param(2)
        ),
        &[Value::from(refresh_hash), Value::from(session_id)],
    )
    .await?;
    Ok(())
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The token was current: it is now rotated, `new_hash` is current, the
    /// session's expiry is extended (never past its absolute end), and the
    /// new token is good for `expires_in_secs`.
    Rotated {
        session_id: String,
        user_id: i64,
        expires_in_secs: i64,
    },
    /// The token had been rotated before: its session is now revoked.
    Reused,
    /// Unknown token, or its session is revoked, expired, or past its
    /// absolute end.
    Invalid,
}

/// Presents the refresh token `old_hash`: if it is current and its session
/// live, rotates it to `new_hash` and moves the session's expiry to
/// `ttl_secs` from now, or to its absolute end if that comes first.
pub async fn rotate<D: Database>(
    db: &D,
    old_hash: &str,
    new_hash: &str,
    ttl_secs: i64,
) -> Result<Refresh, DbError> {
    let d = db.dialect();
    let (t, f, now) = (d.truth(true), d.truth(false), d.now());
    // Claim the token, only while its session is live (not revoked, neither
    // end passed): one statement, so of concurrent refreshes exactly one
    // succeeds, and a revocation racing it cannot void the winner half-way.
    let claimed = db
        .query(
            &format!(
                "UPDATE refresh_tokens SET rotated = {t} WHERE token_hash = {h} AND rotated = {f} \
                 AND session_id IN (SELECT id FROM sessions WHERE revoked = {f} \
                 AND expires_at > {now} AND absolute_expires_at > {now}) \
                 RETURNING session_id",
                h = d.param(1)
            ),
            &[Value::from(old_hash)],
        )
        .await?;
    let Some(session_id) = claimed
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .and_then(Value::into_text)
    else {
        // Not claimed: a rotated token presented again is a replay and ends
        // its session; an unknown token, or one of a dead session, is invalid.
        let revoked = db
            .query(
                &format!(
                    "UPDATE sessions SET revoked = {t} WHERE revoked = {f} AND id IN \
                     (SELECT session_id FROM refresh_tokens WHERE token_hash = {h} AND rotated = {t}) RETURNING id",
                    h = d.param(1)
                ),
                &[Value::from(old_hash)],
            )
            .await?;
        return Ok(if revoked.is_empty() {
            Refresh::Invalid
        } else {
            Refresh::Reused
        });
    };
    let least = match d {
        Dialect::Postgres => "LEAST",
        Dialect::Sqlite => "MIN",
    };
    let extended = db
        .query(
            &format!(
                "UPDATE sessions SET expires_at = {least}({}, absolute_expires_at) WHERE id = {} \
                 RETURNING user_id, {}",
                expires_in(d, 2),
                d.param(1),
                seconds_until(d, "expires_at"),
            ),
            &[Value::from(session_id.as_str()), Value::Int(ttl_secs)],
        )
        .await?;
    let Some((user_id, expires_in_secs)) = extended.into_iter().next().and_then(|row| {
        let user_id = row.first().and_then(Value::as_i64)?;
        let expires_in_secs = row.get(1).and_then(Value::as_i64)?;
        Some((user_id, expires_in_secs.max(0)))
    }) else {
        return Ok(Refresh::Invalid);
    };
    db.execute(
        &format!(
            "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ({}, {})",
            d.param(1),
            d.param(2)
        ),
        &[Value::from(new_hash), Value::from(session_id.as_str())],
    )
    .await?;
    Ok(Refresh::Rotated {
        session_id,
        user_id,
        expires_in_secs,
    })
}

/// Ends a session at once (logout); its tokens stop working.
pub async fn revoke<D: Database>(db: &D, session_id: &str) -> Result<bool, DbError> {
    let d = db.dialect();
    let changed = db
        .execute(
            &format!(
                "UPDATE sessions SET revoked = {} WHERE id = {}",
                d.truth(true),
                d.param(1)
            ),
            &[Value::from(session_id)],
        )
        .await?;
    Ok(changed > 0)
}

/// The username and role of `user_id` while `session_id` is theirs, not
/// revoked, and the user is active; `None` otherwise.
pub async fn live_holder<D: Database>(
    db: &D,
    session_id: &str,
    user_id: i64,
) -> Result<Option<(String, String)>, DbError> {
    let sql = match db.dialect() {
        Dialect::Postgres => {
            "SELECT u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.user_id = $2 AND NOT s.revoked AND u.is_active"
        }
        Dialect::Sqlite => {
            "SELECT u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked = 0 AND u.is_active = 1"
        }
    };
    let rows = db
        .query(sql, &[Value::from(session_id), Value::Int(user_id)])
        .await?;
    Ok(rows.into_iter().next().and_then(|row| {
        let mut values = row.into_iter();
        let username = values.next().and_then(Value::into_text)?;
        let role = values.next().and_then(Value::into_text)?;
        Some((username, role))
    }))
}
