//! Checking a username and password, with throttling. A login never writes
//! to `users`; an unknown username still costs one password verification
//! (against a dummy hash of the same cost), so timing does not reveal which
//! usernames exist.

use crate::db::Database;
use crate::error::ApiError;
use crate::throttle;
use crate::users::{self, User};

/// Verifies passwords; bcrypt in production, counted in tests.
pub trait PasswordCheck {
    fn verify(&self, password: &str, hash: &str) -> bool;
    /// A hash of no one's password, of the same cost as real ones.
    fn dummy_hash(&self) -> &str;
}

/// bcrypt at the configured cost.
pub struct Bcrypt {
    dummy: String,
}

impl Bcrypt {
    /// Computes the dummy hash once (one hash at `cost`).
    pub fn new(cost: u32) -> Result<Self, String> {
        let dummy = bcrypt::hash("not-a-password-anyone-has", cost).map_err(|e| e.to_string())?;
        Ok(Self { dummy })
    }
}

impl PasswordCheck for Bcrypt {
    fn verify(&self, password: &str, hash: &str) -> bool {
        bcrypt::verify(password, hash).unwrap_or(false)
    }

    fn dummy_hash(&self) -> &str {
        &self.dummy
    }
}

/// Limits on failed logins.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub max_failures: i64,
    pub lockout_secs: i64,
}

/// The user whose credentials these are, or 401 `Incorrect username or
/// password`, or 429 while the username or the client address is locked out.
pub async fn check<D: Database, P: PasswordCheck>(
    db: &D,
    passwords: &P,
    policy: LoginPolicy,
    username: &str,
    password: &str,
    client_addr: &str,
) -> Result<User, ApiError> {
    let user_key = format!("user:{}", username.to_ascii_lowercase());
    // The address without its port: one client, many connections.
    let host = client_addr
        .rsplit_once(':')
        .map_or(client_addr, |(host, _)| host);
    let addr_key = format!("addr:{host}");
    // Count this attempt first, so concurrent guesses cannot all pass a
    // check made before any of them is recorded.
    let mut retry_after_secs: Option<i64> = None;
    let mut within_limit = Vec::new();
    for key in [&user_key, &addr_key] {
        let attempt = throttle::reserve(db, key, policy.lockout_secs)
            .await
            .map_err(crate::auth::db_failure)?;
        if attempt.number > policy.max_failures {
            let left = attempt.window_left_secs.max(1);
            retry_after_secs = Some(retry_after_secs.map_or(left, |r| r.max(left)));
        } else {
            within_limit.push(key);
        }
    }
    if let Some(retry_after_secs) = retry_after_secs {
        // No password was checked: this attempt is no failure of the keys
        // that were still open.
        for key in within_limit {
            throttle::refund(db, key)
                .await
                .map_err(crate::auth::db_failure)?;
        }
        return Err(ApiError::TooManyRequests {
            retry_after_secs: retry_after_secs as u64,
        });
    }
    let found = users::by_username(db, username)
        .await
        .map_err(crate::auth::db_failure)?;
    let hash = found
        .as_ref()
        .map_or(passwords.dummy_hash(), |(_, hash)| hash.as_str());
    let password_ok = passwords.verify(password, hash);
    match found {
        Some((user, _)) if password_ok && user.is_active => {
            throttle::clear(db, &user_key)
                .await
                .map_err(crate::auth::db_failure)?;
            throttle::refund(db, &addr_key)
                .await
                .map_err(crate::auth::db_failure)?;
            Ok(user)
        }
        // The attempt counted above is the recorded failure.
        _ => Err(ApiError::Unauthorized("Incorrect username or password")),
    }
}
