//! Reading component variables: a missing or malformed one is a deployment
//! mistake, logged, and 500 to the client.

use crate::auth::jwt::TokenKeys;
use crate::error::ApiError;
use crate::platform::Variables;

/// A component variable, or 500 (a deployment mistake, logged).
pub async fn variable<V: Variables>(variables: &V, name: &str) -> Result<String, ApiError> {
    variables.get(name).await.map_err(|e| {
        eprintln!("variable {name}: {e}");
        ApiError::Internal
    })
}

/// A numeric component variable.
pub async fn number<V: Variables>(variables: &V, name: &str) -> Result<i64, ApiError> {
    variable(variables, name)
        .await?
        .trim()
        .parse()
        .map_err(|_| {
            eprintln!("variable {name} is not a number");
            ApiError::Internal
        })
}

/// The token keys from `jwt_secret`, `jwt_issuer` and `jwt_audience`.
pub async fn token_keys<V: Variables>(variables: &V) -> Result<TokenKeys, ApiError> {
    let secret = variable(variables, "jwt_secret").await?;
    let issuer = variable(variables, "jwt_issuer").await?;
    let audience = variable(variables, "jwt_audience").await?;
    TokenKeys::new(&secret, &issuer, &audience).map_err(|e| {
        eprintln!("{e}");
        ApiError::Internal
    })
}
