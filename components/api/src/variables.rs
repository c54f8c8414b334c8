//! Component variables (wasm32): read through spin-sdk, and a missing or
//! malformed one is a deployment mistake: logged, and 500 to the client.

use spin_sdk::variables;

use crate::auth::jwt::TokenKeys;
use crate::error::ApiError;

/// A component variable, or 500 (a deployment mistake, logged).
pub async fn variable(name: &str) -> Result<String, ApiError> {
    variables::get(name).await.map_err(|e| {
        eprintln!("variable {name}: {e:?}");
        ApiError::Internal
    })
}

/// A numeric component variable.
pub async fn number(name: &str) -> Result<i64, ApiError> {
    variable(name).await?.trim().parse().map_err(|_| {
        eprintln!("variable {name} is not a number");
        ApiError::Internal
    })
}

/// The token keys from `jwt_secret`, `jwt_issuer` and `jwt_audience`.
pub async fn token_keys() -> Result<TokenKeys, ApiError> {
    let secret = variable("jwt_secret").await?;
    let issuer = variable("jwt_issuer").await?;
    let audience = variable("jwt_audience").await?;
    TokenKeys::new(&secret, &issuer, &audience).map_err(|e| {
        eprintln!("{e}");
        ApiError::Internal
    })
}
