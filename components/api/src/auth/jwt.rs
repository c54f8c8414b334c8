//! Access tokens: HS256 JWTs with `sub`, `username`, `role`, `iat`, `exp`,
//! `jti` (the session), `iss` and `aud`. Verification pins the algorithm and
//! requires `exp`, `iss` and `aud`; a token without them is refused.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub username: String,
    pub role: String,
    pub iat: u64,
    pub exp: u64,
    /// The session this token belongs to; revoking it revokes the token.
    pub jti: String,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// `jwt_secret` is shorter than [`MIN_SECRET_BYTES`].
    WeakSecret(usize),
    /// Expired, forged, wrong algorithm, issuer or audience, or malformed.
    Invalid,
    Encoding(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::WeakSecret(len) => write!(
                f,
                "variable jwt_secret is {len} bytes; it must be at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)"
            ),
            JwtError::Invalid => f.write_str("invalid token"),
            JwtError::Encoding(e) => write!(f, "cannot encode token: {e}"),
        }
    }
}

/// Signs and checks tokens with one secret, issuer and audience.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &str, issuer: &str, audience: &str) -> Result<Self, JwtError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(JwtError::WeakSecret(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, JwtError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| JwtError::Encoding(e.to_string()))
    }

    /// The claims of a valid token (signature, algorithm, exp, iss, aud).
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| JwtError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(exp_offset: i64) -> Claims {
        Claims {
            sub: "1".into(),
            username: "admin".into(),
            role: "admin".into(),
            iat: now(),
            exp: (now() as i64 + exp_offset) as u64,
            jti: "session-1".into(),
            iss: "nexa".into(),
            aud: "nexa-api".into(),
        }
    }

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, "nexa", "nexa-api").unwrap()
    }

    #[test]
    fn issued_tokens_verify() {
        let token = keys().issue(&claims(60)).unwrap();
        assert_eq!(keys().verify(&token).unwrap(), claims(60));
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(matches!(
            TokenKeys::new("short", "nexa", "nexa-api"),
            Err(JwtError::WeakSecret(5))
        ));
    }

    #[test]
    fn expired_forged_and_foreign_tokens_are_refused() {
        let keys = keys();
        assert_eq!(
            keys.verify(&keys.issue(&claims(-1)).unwrap()),
            Err(JwtError::Invalid)
        );
        let other = TokenKeys::new("another-secret-another-secret-xx", "nexa", "nexa-api").unwrap();
        assert_eq!(
            keys.verify(&other.issue(&claims(60)).unwrap()),
            Err(JwtError::Invalid)
        );
        let foreign_issuer = TokenKeys::new(SECRET, "elsewhere", "nexa-api").unwrap();
        let mut c = claims(60);
        c.iss = "elsewhere".into();
        assert_eq!(
            keys.verify(&foreign_issuer.issue(&c).unwrap()),
            Err(JwtError::Invalid)
        );
        let mut c = claims(60);
        c.aud = "other-api".into();
        assert_eq!(
            keys.verify(&keys.issue(&c).unwrap()),
            Err(JwtError::Invalid)
        );
        assert_eq!(keys.verify("not.a.token"), Err(JwtError::Invalid));
    }

    #[test]
    fn tokens_without_exp_or_with_another_algorithm_are_refused() {
        // An HS256 token without exp, signed with the right secret.
        let body = serde_json::json!({ "sub": "1", "iss": "nexa", "aud": "nexa-api" });
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(keys().verify(&token), Err(JwtError::Invalid));
        // HS512 with the same secret: the algorithm is pinned.
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(60),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(keys().verify(&token), Err(JwtError::Invalid));
        // "none" algorithm.
        use base64::Engine;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let unsigned = format!(
            "{}.{}.",
            encode(br#"{"alg":"none","typ":"JWT"}"#),
            encode(serde_json::to_string(&claims(60)).unwrap().as_bytes())
        );
        assert_eq!(keys().verify(&unsigned), Err(JwtError::Invalid));
    }
}
