//! The API's errors and the one place they become HTTP: a status, JSON
//! `{"detail": "..."}` (422: `{"detail": [{"type", "loc", "msg", "input"?}]}`,
//! as the original FastAPI service answered), and the headers that go with it.

use serde_json::{Value, json};

use crate::storage::DbError;

/// One position in a request: `["body", "price"]`, `["query", "limit"]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Loc {
    Key(String),
    Index(usize),
}

impl From<&str> for Loc {
    fn from(key: &str) -> Self {
        Loc::Key(key.to_string())
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Machine-readable kind, e.g. `missing`, `string_too_long`, `json_invalid`.
    pub kind: &'static str,
    pub loc: Vec<Loc>,
    pub msg: String,
    /// The offending input, when there is one to show.
    pub input: Option<Value>,
}

impl FieldError {
    pub fn new(
        kind: &'static str,
        loc: &[&str],
        msg: impl Into<String>,
        input: Option<Value>,
    ) -> Self {
        Self {
            kind,
            loc: loc.iter().map(|k| Loc::from(*k)).collect(),
            msg: msg.into(),
            input,
        }
    }

    fn to_json(&self) -> Value {
        let loc: Vec<Value> = self
            .loc
            .iter()
            .map(|l| match l {
                Loc::Key(k) => json!(k),
                Loc::Index(i) => json!(i),
            })
            .collect();
        let mut out = json!({ "type": self.kind, "loc": loc, "msg": self.msg });
        if let Some(input) = &self.input {
            out["input"] = input.clone();
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 401 with `WWW-Authenticate: Bearer`.
    Unauthorized(&'static str),
    Forbidden(&'static str),
    NotFound(&'static str),
    /// 405 with `Allow`.
    MethodNotAllowed(Vec<&'static str>),
    Conflict(&'static str),
    UnsupportedMediaType,
    Validation(Vec<FieldError>),
    /// 429 with an honest `Retry-After` (seconds).
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// The database cannot be reached: 503, never a hang.
    Unavailable,
    /// A bug or an unexpected backend answer; details go to the log, not the client.
    Internal,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Conflict(_) => 409,
            ApiError::UnsupportedMediaType => 415,
            ApiError::Validation(_) => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable => 503,
            ApiError::Internal => 500,
        }
    }

    pub fn body(&self) -> Value {
        let detail = match self {
            ApiError::Unauthorized(d)
            | ApiError::Forbidden(d)
            | ApiError::NotFound(d)
            | ApiError::Conflict(d) => {
                json!(d)
            }
            ApiError::MethodNotAllowed(_) => json!("Method Not Allowed"),
            ApiError::UnsupportedMediaType => json!("Unsupported Media Type"),
            ApiError::Validation(errors) => {
                Value::from(errors.iter().map(FieldError::to_json).collect::<Vec<_>>())
            }
            ApiError::TooManyRequests { .. } => {
                json!("Too many failed login attempts; try again later")
            }
            ApiError::Unavailable => json!("Service temporarily unavailable"),
            ApiError::Internal => json!("Internal Server Error"),
        };
        json!({ "detail": detail })
    }

    /// Headers the status calls for.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::Unauthorized(_) => vec![("www-authenticate", "Bearer".to_string())],
            ApiError::MethodNotAllowed(allow) => vec![("allow", allow.join(", "))],
            ApiError::TooManyRequests { retry_after_secs } => {
                vec![("retry-after", retry_after_secs.max(&1).to_string())]
            }
            ApiError::Unavailable => vec![("retry-after", "1".to_string())],
            _ => Vec::new(),
        }
    }
}

/// Maps a database failure to the API's error: unreachable → 503, else 500.
pub fn db_failure(error: DbError) -> ApiError {
    match error {
        DbError::Unavailable(_) => ApiError::Unavailable,
        _ => ApiError::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_the_original_api_did() {
        let e = ApiError::Unauthorized("Not authenticated");
        assert_eq!(
            (e.status(), e.body()),
            (401, json!({ "detail": "Not authenticated" }))
        );
        assert_eq!(
            e.headers(),
            vec![("www-authenticate", "Bearer".to_string())]
        );

        let e = ApiError::Validation(vec![FieldError::new(
            "decimal_max_places",
            &["body", "price"],
            "Decimal input should have no more than 2 decimal places",
            Some(json!(12.345)),
        )]);
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.body(),
            json!({ "detail": [{
                "type": "decimal_max_places",
                "loc": ["body", "price"],
                "msg": "Decimal input should have no more than 2 decimal places",
                "input": 12.345,
            }] })
        );

        let e = ApiError::MethodNotAllowed(vec!["GET", "POST"]);
        assert_eq!(e.headers(), vec![("allow", "GET, POST".to_string())]);
        let e = ApiError::TooManyRequests {
            retry_after_secs: 0,
        };
        assert_eq!(e.headers(), vec![("retry-after", "1".to_string())]);
        assert_eq!(
            ApiError::Unavailable.body(),
            json!({ "detail": "Service temporarily unavailable" })
        );
    }
}
