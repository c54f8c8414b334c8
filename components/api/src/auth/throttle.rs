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

/// Counts this attempt against both keys, or 429 (with the longer wait) when
/// either is locked out. A refused attempt checks no password, so it is given
/// back to the keys that were still open.
pub async fn admit<D: Database>(
    db: &D,
    policy: LoginPolicy,
    keys: &ThrottleKeys,
) -> Result<(), ApiError> {
    let mut retry_after_secs: Option<i64> = None;
    let mut within_limit = Vec::new();
    for key in [&keys.user, &keys.addr] {
        let attempt = login_failures::reserve(db, key, policy.lockout_secs)
            .await
            .map_err(db_failure)?;
        if attempt.number > policy.max_failures {
            let left = attempt.window_left_secs.max(1);
            retry_after_secs = Some(retry_after_secs.map_or(left, |r| r.max(left)));
        } else {
            within_limit.push(key);
        }
    }
    let Some(retry_after_secs) = retry_after_secs else {
        return Ok(());
    };
    for key in within_limit {
        login_failures::refund(db, key).await.map_err(db_failure)?;
    }
    Err(ApiError::TooManyRequests {
        retry_after_secs: retry_after_secs as u64,
    })
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
