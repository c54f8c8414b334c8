//! Failed-login throttling, on two keys:
//!
//! - the pair (username, client host): `max_failures` per `lockout_secs`.
//!   Only that client is locked out of that username, so nobody can lock the
//!   admin out from elsewhere, and clients behind one proxy address lock out
//!   only the usernames they guessed at;
//! - the username, from all clients together: `user_max_failures` per short
//!   `user_window_secs`, so guessing from many clients is slow too. Past it a
//!   login is answered 429 with a `Retry-After` of what is left of that short
//!   window (never a server-side sleep: auth runs few logins at a time), so an
//!   attacker can keep the real user waiting for seconds, not minutes.
//!
//! Every attempt is counted before its password is checked (one atomic
//! upsert per key in [`crate::repository::login_failures`]), so a burst of
//! parallel guesses gets at most `max_failures` password checks per client;
//! an attempt that turns out not to be a failure is given back.

use std::net::{IpAddr, SocketAddr};

use crate::error::{ApiError, db_failure};
use crate::repository::login_failures::{self, Limit, Reservation};
use crate::storage::Database;

/// Limits on failed logins. The defaults are `spin.toml`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failed logins per (username, client) in one window (`login_max_failures`).
    pub max_failures: i64,
    /// That window's length, so also the longest a client waits once it is
    /// locked out of a username (`login_lockout_seconds`).
    pub lockout_secs: i64,
    /// Failed logins per username from all clients in one window
    /// (`login_user_max_failures`).
    pub user_max_failures: i64,
    /// That window's length (`login_user_window_seconds`).
    pub user_window_secs: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lockout_secs: 300,
            user_max_failures: 20,
            user_window_secs: 60,
        }
    }
}

impl LoginPolicy {
    fn pair_limit(&self) -> Limit {
        Limit {
            max: self.max_failures.max(1),
            window_secs: self.lockout_secs,
        }
    }

    fn user_limit(&self) -> Limit {
        Limit {
            max: self.user_max_failures.max(1),
            window_secs: self.user_window_secs,
        }
    }

    /// A row whose window started longer ago than this has ended under
    /// either limit.
    pub fn longest_window_secs(&self) -> i64 {
        self.lockout_secs.max(self.user_window_secs)
    }
}

/// The keys one login attempt counts against: `pair:<client host>|<username>`
/// and `user:<username>`, the username in lower case (any case is one
/// username) and the client without its port (one client, many connections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleKeys {
    pub pair: String,
    pub user: String,
}

impl ThrottleKeys {
    pub fn new(username: &str, client_addr: &str) -> Self {
        let user = username.to_ascii_lowercase();
        Self {
            pair: format!("pair:{}|{user}", client_host(client_addr)),
            user: format!("user:{user}"),
        }
    }
}

/// The host of a `spin-client-addr` (`1.2.3.4:5678`, `[::1]:5678`, or
/// whatever a host sends), without the port.
fn client_host(client_addr: &str) -> String {
    if let Ok(socket) = client_addr.parse::<SocketAddr>() {
        return socket.ip().to_string();
    }
    if let Ok(ip) = client_addr.parse::<IpAddr>() {
        return ip.to_string();
    }
    client_addr
        .rsplit_once(':')
        .map_or(client_addr, |(host, _)| host)
        .to_string()
}

fn too_many(window_left_secs: i64) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: window_left_secs.max(1) as u64,
    }
}

/// Counts this attempt against its pair, then its username, or 429 while
/// either is at its limit.
///
/// A refused attempt counts nowhere: the upsert counts nothing at a key's
/// limit, and an attempt the username refuses gives its pair reservation
/// back. The pair goes first so that the many attempts a single guessing
/// client has refused never touch the username's budget, which the real user
/// shares. The only reservation a refused attempt ever holds, briefly, is on
/// its own pair while its username is full: a concurrent attempt of the same
/// pair and username that it pushes over the pair's limit would have been
/// refused by the username too (unless a slot freed in between), so at worst
/// that attempt is told the pair's longer `Retry-After`.
///
/// When a reservation opens a window, ended windows are purged (bounded).
pub async fn admit<D: Database>(
    db: &D,
    policy: LoginPolicy,
    keys: &ThrottleKeys,
) -> Result<(), ApiError> {
    let pair = login_failures::reserve(db, &keys.pair, policy.pair_limit())
        .await
        .map_err(db_failure)?;
    let pair_opened = match pair {
        Reservation::Counted { opened_window, .. } => opened_window,
        Reservation::Refused { window_left_secs } => return Err(too_many(window_left_secs)),
    };
    let user = match login_failures::reserve(db, &keys.user, policy.user_limit()).await {
        Ok(user) => user,
        Err(e) => {
            let _ = login_failures::refund(db, &keys.pair).await;
            return Err(db_failure(e));
        }
    };
    let user_opened = match user {
        Reservation::Counted { opened_window, .. } => opened_window,
        Reservation::Refused { window_left_secs } => {
            login_failures::refund(db, &keys.pair)
                .await
                .map_err(db_failure)?;
            return Err(too_many(window_left_secs));
        }
    };
    if pair_opened || user_opened {
        // Housekeeping: a failure here must not refuse the login.
        if let Err(e) = login_failures::purge(db, policy.longest_window_secs()).await {
            eprintln!("purging ended login_failures windows: {e}");
        }
    }
    Ok(())
}

/// After a successful login: this client's failures at this username are
/// forgotten, and the attempt is given back to the username. The username's
/// count is refunded, not cleared: clearing it would hand a guesser on other
/// clients a fresh budget every time the real user logs in.
pub async fn succeeded<D: Database>(db: &D, keys: &ThrottleKeys) -> Result<(), ApiError> {
    login_failures::clear(db, &keys.pair)
        .await
        .map_err(db_failure)?;
    login_failures::refund(db, &keys.user)
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
                pair: "pair:10.0.0.1|alice".into(),
                user: "user:alice".into(),
            }
        );
        assert_eq!(
            ThrottleKeys::new("bob", "[2001:db8::1]:443").pair,
            "pair:2001:db8::1|bob"
        );
        assert_eq!(ThrottleKeys::new("bob", "::1").pair, "pair:::1|bob");
        assert_eq!(ThrottleKeys::new("bob", "local").pair, "pair:local|bob");
        assert_eq!(
            ThrottleKeys::new("bob", "proxy.internal:80").pair,
            "pair:proxy.internal|bob"
        );
    }

    #[test]
    fn one_client_and_one_username_share_no_pair() {
        let alice_here = ThrottleKeys::new("alice", "10.0.0.1:1");
        let alice_there = ThrottleKeys::new("alice", "10.0.0.2:1");
        let bob_here = ThrottleKeys::new("bob", "10.0.0.1:2");
        assert_ne!(alice_here.pair, alice_there.pair);
        assert_eq!(alice_here.user, alice_there.user);
        assert_ne!(alice_here.pair, bob_here.pair);
    }

    #[test]
    fn limits_follow_the_policy() {
        let policy = LoginPolicy::default();
        assert_eq!(
            (policy.pair_limit(), policy.user_limit()),
            (
                Limit {
                    max: 5,
                    window_secs: 300
                },
                Limit {
                    max: 20,
                    window_secs: 60
                }
            )
        );
        assert_eq!(policy.longest_window_secs(), 300);
        let odd = LoginPolicy {
            max_failures: 0,
            lockout_secs: 10,
            user_max_failures: -3,
            user_window_secs: 900,
        };
        assert_eq!((odd.pair_limit().max, odd.user_limit().max), (1, 1));
        assert_eq!(odd.longest_window_secs(), 900);
    }
}
