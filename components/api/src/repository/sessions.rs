//! Sessions and their refresh tokens. Each refresh is one atomic statement
//! (`UPDATE … WHERE NOT rotated RETURNING`), so of two concurrent refreshes
//! with one token exactly one wins; a token that was already rotated,
//! presented again, revokes its whole session. Logout revokes at once.

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

/// Opens a session with its first refresh token (stored by hash only).
pub async fn create<D: Database>(
    db: &D,
    session_id: &str,
    user_id: i64,
    refresh_hash: &str,
    ttl_secs: i64,
) -> Result<(), DbError> {
    let d = db.dialect();
    db.execute(
        &format!(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ({}, {}, {})",
            d.param(1),
            d.param(2),
            expires_in(d, 3)
        ),
        &[
            Value::from(session_id),
            Value::Int(user_id),
            Value::Int(ttl_secs),
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
    /// session's expiry is extended.
    Rotated { session_id: String, user_id: i64 },
    /// The token had been rotated before: its session is now revoked.
    Reused,
    /// Unknown token, or its session is revoked or expired.
    Invalid,
}

pub async fn rotate<D: Database>(
    db: &D,
    old_hash: &str,
    new_hash: &str,
    ttl_secs: i64,
) -> Result<Refresh, DbError> {
    let d = db.dialect();
    let (t, f, now) = (d.truth(true), d.truth(false), d.now());
    // Claim the token, only while its session is live: one statement, so of
    // concurrent refreshes exactly one succeeds, and a revocation racing it
    // cannot void the winner half-way.
    let claimed = db
        .query(
            &format!(
                "UPDATE refresh_tokens SET rotated = {t} WHERE token_hash = {h} AND rotated = {f} \
                 AND session_id IN (SELECT id FROM sessions WHERE revoked = {f} AND expires_at > {now}) \
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
    let extended = db
        .query(
            &format!(
                "UPDATE sessions SET expires_at = {} WHERE id = {} RETURNING user_id",
                expires_in(d, 2),
                d.param(1)
            ),
            &[Value::from(session_id.as_str()), Value::Int(ttl_secs)],
        )
        .await?;
    let Some(user_id) = extended
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .and_then(|v| v.as_i64())
    else {
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
