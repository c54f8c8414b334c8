//! Who is calling, and logging in. A bearer token is verified (signature,
//! algorithm, exp, iss, aud) and then checked against the database: its
//! session must not be revoked and its user must exist and be active.
//! The SQL behind all of it is in [`crate::repository`].

pub mod cookie;
pub mod jwt;
pub mod login;
pub mod sessions;
pub mod throttle;

use crate::error::{ApiError, db_failure};
use crate::repository;
use crate::storage::Database;
use jwt::TokenKeys;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    pub session: String,
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// The caller, or 401 `Not authenticated` (no token) / `Invalid
/// authentication credentials` (anything wrong with it).
pub async fn authenticate<D: Database>(
    db: &D,
    keys: &TokenKeys,
    authorization: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = bearer_token(authorization).ok_or(ApiError::Unauthorized("Not authenticated"))?;
    let invalid = ApiError::Unauthorized("Invalid authentication credentials");
    let claims = keys.verify(token).map_err(|_| invalid.clone())?;
    let user_id: i64 = claims.sub.parse().map_err(|_| invalid.clone())?;
    let (username, role) = repository::sessions::live_holder(db, &claims.jti, user_id)
        .await
        .map_err(db_failure)?
        .ok_or(invalid)?;
    Ok(Principal {
        user_id,
        username,
        is_admin: role == "admin",
        session: claims.jti,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(Some("abc")), None);
        assert_eq!(bearer_token(None), None);
    }
}
