//! Checking a username and password, with throttling. A login never writes
//! to `users`; an unknown username still costs one password verification
//! (against a dummy hash of the same cost), so timing does not reveal which
//! usernames exist.

use super::throttle::{self, LoginPolicy, ThrottleKeys};
use crate::error::{ApiError, db_failure};
use crate::repository::users;
use crate::storage::Database;
use crate::users::{USERNAME_BYTES, User};

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
        let dummy = hash_password("not-a-password-anyone-has", cost)?;
        Ok(Self { dummy })
    }
}

/// The bcrypt hash of `password` at `cost`, as the users table stores it.
pub fn hash_password(password: &str, cost: u32) -> Result<String, String> {
    bcrypt::hash(password, cost).map_err(|e| e.to_string())
}

impl PasswordCheck for Bcrypt {
    fn verify(&self, password: &str, hash: &str) -> bool {
        bcrypt::verify(password, hash).unwrap_or(false)
    }

    fn dummy_hash(&self) -> &str {
        &self.dummy
    }
}

/// The user whose credentials these are, or 401 `Incorrect username or
/// password`, or 429 while this client is locked out of the username or the
/// username has had too many failures from all clients (see [`throttle`]).
pub async fn check<D: Database, P: PasswordCheck>(
    db: &D,
    passwords: &P,
    policy: LoginPolicy,
    username: &str,
    password: &str,
    client_addr: &str,
) -> Result<User, ApiError> {
    // No one registers a longer username, so it matches no one: refused
    // before it is stored anywhere (a throttle key would hold it), and at
    // once (how long a username may be is no secret).
    // Nor one with a NUL, which no stored username has (and which
    // PostgreSQL's text cannot hold).
    if username.len() > *USERNAME_BYTES.end() || username.contains('\0') {
        return Err(ApiError::Unauthorized("Incorrect username or password"));
    }
    let keys = ThrottleKeys::new(username, client_addr);
    // Count this attempt first, so concurrent guesses cannot all pass a
    // check made before any of them is recorded.
    throttle::admit(db, policy, &keys).await?;
    let found = users::by_username(db, username).await.map_err(db_failure)?;
    let hash = found
        .as_ref()
        .map_or(passwords.dummy_hash(), |(_, hash)| hash.as_str());
    let password_ok = passwords.verify(password, hash);
    match found {
        Some((user, _)) if password_ok && user.is_active => {
            throttle::succeeded(db, &keys).await?;
            Ok(user)
        }
        // The attempt counted above is the recorded failure.
        _ => Err(ApiError::Unauthorized("Incorrect username or password")),
    }
}
