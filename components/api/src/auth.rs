//! Who is calling: a bearer token verified (signature, algorithm, exp, iss,
//! aud) and then checked against the database: its session must not be
//! revoked and its user must exist and be active.

use crate::db::{Database, DbError, Dialect, Value};
use crate::error::ApiError;
use crate::jwt::TokenKeys;

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

/// Maps a database failure to the API's error: unreachable → 503, else 500.
pub fn db_failure(error: DbError) -> ApiError {
    match error {
        DbError::Unavailable(_) => ApiError::Unavailable,
        _ => ApiError::Internal,
    }
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
        .query(sql, &[Value::Text(claims.jti.clone()), Value::Int(user_id)])
        .await
        .map_err(db_failure)?;
    let row = rows.into_iter().next().ok_or(invalid.clone())?;
    let mut values = row.into_iter();
    let username = values
        .next()
        .and_then(Value::into_text)
        .ok_or(invalid.clone())?;
    let role = values.next().and_then(Value::into_text).ok_or(invalid)?;
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
