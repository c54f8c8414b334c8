//! Users: what a user is, the rules for new users, and the user's JSON. Their
//! SQL is in [`crate::repository::users`].

use serde_json::{Value as Json, json};

use crate::error::{ApiError, FieldError};
use crate::validation::{Body, Field};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: String,
}

impl User {
    /// `{"id","email","username","role","is_active","created_at"}`: never the hash.
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "email": self.email,
            "username": self.username,
            "role": self.role,
            "is_active": self.is_active,
            "created_at": self.created_at,
        })
    }
}

/// A registration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub email: String,
    pub username: String,
    pub password: String,
    /// Only an admin may set it; `None` means `user`.
    pub role: Option<String>,
}

/// Password length bounds in bytes: bcrypt reads at most 72, and a longer
/// password is refused rather than silently truncated.
pub const PASSWORD_BYTES: std::ops::RangeInclusive<usize> = 8..=72;

/// Username length bounds in bytes (usernames are ASCII). A login with a
/// longer username cannot match anyone, so it is refused before it is stored
/// anywhere (see [`crate::auth::login`]).
pub const USERNAME_BYTES: std::ops::RangeInclusive<usize> = 3..=50;

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 255
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

fn valid_username(username: &str) -> bool {
    USERNAME_BYTES.contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Validates a registration body, reporting every problem at once.
pub fn new_user(body: &Body) -> Result<NewUser, ApiError> {
    let mut errors = Vec::new();
    let mut text = |name: &'static str| -> Option<String> {
        match body.get(name) {
            Some(Field::Other(Json::String(s))) => Some(s.clone()),
            None => {
                errors.push(FieldError::new(
                    "missing",
                    &["body", name],
                    "Field required",
                    None,
                ));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "string_type",
                    &["body", name],
                    "Input should be a valid string",
                    None,
                ));
                None
            }
        }
    };
    let email = text("email").map(|e| e.trim().to_ascii_lowercase());
    let username = text("username");
    let password = text("password");
    let role = match body.get("role") {
        // Absent means `user`; an explicit null is no role and is refused.
        None => None,
        Some(Field::Other(Json::String(r))) if r == "admin" || r == "user" => Some(r.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "enum",
                &["body", "role"],
                "Input should be 'admin' or 'user'",
                None,
            ));
            None
        }
    };
    if let Some(email) = &email
        && !valid_email(email)
    {
        errors.push(FieldError::new(
            "value_error",
            &["body", "email"],
            "value is not a valid email address",
            Some(Json::String(email.clone())),
        ));
    }
    if let Some(username) = &username
        && !valid_username(username)
    {
        errors.push(FieldError::new(
            "string_pattern_mismatch",
            &["body", "username"],
            "Username must be 3 to 50 characters of letters, digits, '_', '.' or '-'",
            Some(Json::String(username.clone())),
        ));
    }
    if let Some(password) = &password
        && !PASSWORD_BYTES.contains(&password.len())
    {
        errors.push(FieldError::new(
            if password.len() < *PASSWORD_BYTES.start() {
                "string_too_short"
            } else {
                "string_too_long"
            },
            &["body", "password"],
            "Password must be 8 to 72 bytes",
            None,
        ));
    }
    match (email, username, password) {
        (Some(email), Some(username), Some(password)) if errors.is_empty() => Ok(NewUser {
            email,
            username,
            password,
            role,
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::json_object;

    fn parse(body: &str) -> Result<NewUser, ApiError> {
        new_user(&json_object(body.as_bytes())?)
    }

    fn kinds(error: ApiError) -> Vec<&'static str> {
        match error {
            ApiError::Validation(errors) => errors.iter().map(|e| e.kind).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registrations_are_validated() {
        let ok = parse(r#"{"email": " Alice@Example.COM ", "username": "alice_1.x-y", "password": "correct horse"}"#).unwrap();
        assert_eq!(ok.email, "alice@example.com");
        assert_eq!(ok.role, None);
        assert_eq!(
            kinds(parse("{}").unwrap_err()),
            ["missing", "missing", "missing"]
        );
        let bad = r#"{"email": "not-an-email", "username": "no spaces", "password": "short", "role": "root"}"#;
        assert_eq!(
            kinds(parse(bad).unwrap_err()),
            [
                "enum",
                "value_error",
                "string_pattern_mismatch",
                "string_too_short"
            ]
        );
        let long = format!(
            r#"{{"email": "a@b.io", "username": "abc", "password": "{}"}}"#,
            "é".repeat(37)
        );
        assert_eq!(
            kinds(parse(&long).unwrap_err()),
            ["string_too_long"],
            "74 bytes, never truncated"
        );
        let role_null =
            r#"{"email": "a@b.io", "username": "abc", "password": "12345678", "role": null}"#;
        assert_eq!(kinds(parse(role_null).unwrap_err()), ["enum"]);
        for email in ["a@b", "@b.io", "a@.io", "a b@c.io", "a@b..io"] {
            assert!(!valid_email(email), "{email}");
        }
        assert!(!valid_username("ab"));
        assert!(!valid_username(&"a".repeat(51)));
    }
}
