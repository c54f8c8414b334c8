//! Failed-login throttling, per username and per client address. Every
//! attempt is counted before its password is checked (one atomic upsert in
//! [`crate::repository::login_failures`]), so a burst of parallel guesses gets
//! at most `max_failures` password checks; an attempt that turns out not to be
//! a failure is given back.

use crate::error::{ApiError, db_failure};
use crate::repository::login_failures;
use crate::storage::Database;

/// Limits on failed logins.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub max_failures: i64,
    pub lockout_secs: i64,
}

/// The keys one login attempt counts against: its username (any case) and
/// its client's address without the port (one client, many connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKeys {
    pub user: String,
    pub addr: String,
}

impl ThrottleKeys {
    pub fn new(username: &str, client_addr: &str) -> Self {
        let host = client_addr
            .rsplit_once(':')
            .map_or(client_addr, |(host, _)| host);
        Self {
            user: format!("user:{}", username.to_ascii_lowercase()),
            addr: format!("addr:{host}"),
        }
    }
}

/// Counts this attempt against the username, then the address, or 429 when
/// either is locked out. A refused attempt checks no password, so it is given
/// back to the username when the address refused it; and an attempt the
/// username already refuses never touches the address: its reservation there,
/// however brief, could refuse a concurrent attempt that is within the limit
/// (of 20 parallel guesses, 4 instead of 5 were checked).
pub async fn admit<D: Database>(
    db: &D,
    policy: LoginPolicy,
    keys: &ThrottleKeys,
) -> Result<(), ApiError> {
    let mut reserved = Vec::new();
    for key in [&keys.user, &keys.addr] {
        let attempt = login_failures::reserve(db, key, policy.lockout_secs)
            .await
            .map_err(db_failure)?;
        if attempt.number > policy.max_failures {
            for earlier in reserved {
                login_failures::refund(db, earlier)
                    .await
                    .map_err(db_failure)?;
            }
            return Err(ApiError::TooManyRequests {
                retry_after_secs: attempt.window_left_secs.max(1) as u64,
            });
        }
        reserved.push(key);
    }
    Ok(())
}

/// After a successful login: the username's failures are forgotten, and the
/// attempt is given back to the address.
pub async fn succeeded<D: Database>(db: &D, keys: &ThrottleKeys) -> Result<(), ApiError> {
    login_failures::clear(db, &keys.user)
        .await
        .map_err(db_failure)?;
    login_failures::refund(db, &keys.addr)
        .await
        .map_err(db_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_port() {
        assert_eq!(
            ThrottleKeys::new("Alice", "10.0.0.1:5000"),
            ThrottleKeys {
                user: "user:alice".into(),
                addr: "addr:10.0.0.1".into()
            }
        );
        assert_eq!(ThrottleKeys::new("bob", "local").addr, "addr:local");
    }
}
