//! `/auth/token`, `/auth/refresh`, `/auth/logout`: bearer tokens for the API.
//! An access token is a short-lived JWT; a refresh token is a random secret
//! (stored by hash) that is rotated on every use and also set as an
//! `HttpOnly` cookie scoped to `/auth`. Each refresh extends the session by
//! `refresh_token_ttl_seconds`, but never past `refresh_session_max_seconds`
//! after its login.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use serde_json::{Value as Json, json};

use crate::auth::cookie;
use crate::auth::jwt::Claims;
use crate::auth::login::{self, Bcrypt, hash_password};
use crate::auth::sessions::{digest, new_refresh_token};
use crate::auth::throttle::LoginPolicy;
use crate::error::{ApiError, FieldError, db_failure};
use crate::http::multipart;
use crate::http::{ApiRequest, ApiResponse, json, no_content};
use crate::platform::{Platform, Variables};
use crate::repository::sessions::{self, Lifetime, Refresh};
use crate::repository::users;
use crate::routes::Endpoint;
use crate::storage::{Database, DbError};
use crate::users::User;
use crate::validation::{Field, json_object};
use crate::variables::{number, token_keys, variable};

pub async fn handle<P: Platform>(
    platform: &P,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let variables = platform.variables();
    let content_type = request.header("content-type").unwrap_or_default();
    let authorization = request.header("authorization");
    let cookie_header = request.header("cookie");
    let client_addr = request.header("spin-client-addr").unwrap_or_default();
    let secure = request
        .header("spin-full-url")
        .is_some_and(|url| url.starts_with("https://"));
    let body = request.body;

    let db = open(platform).await?;
    match request.matched.endpoint {
        Endpoint::IssueToken => {
            let (username, password) = credentials(&content_type, body)?;
            token(platform, &db, &username, &password, &client_addr, secure).await
        }
        Endpoint::RefreshToken => {
            let presented = refresh_token(&body, cookie_header.as_deref())?;
            refresh(variables, &db, &presented, secure).await
        }
        Endpoint::Logout => {
            let keys = token_keys(variables).await?;
            let caller = crate::auth::authenticate(&db, &keys, authorization.as_deref()).await?;
            sessions::revoke(&db, &caller.session)
                .await
                .map_err(db_failure)?;
            let mut response = no_content();
            set_cookie(&mut response, "", 0, secure);
            Ok(response)
        }
        // Another component's route: spin.toml never sends it here.
        _ => Err(ApiError::NotFound("Not Found")),
    }
}

/// The database, migrated, and with the seeded `admin` given the
/// `admin_password` variable (only this component is given it) before any
/// login is checked.
async fn open<P: Platform>(platform: &P) -> Result<P::Database, ApiError> {
    let db = super::open_migrated(platform).await?;
    let provisioned = &platform.first_use().admin_provisioned;
    if !provisioned.load(Ordering::Acquire) {
        let variables = platform.variables();
        let password = variable(variables, "admin_password").await?;
        let cost = number(variables, "bcrypt_cost").await? as u32;
        users::provision_admin_password(&db, || {
            hash_password(&password, cost)
                .map_err(|e| DbError::Other(format!("hashing the admin password: {e}")))
        })
        .await
        .map_err(|e| {
            eprintln!("provisioning the admin account: {e}");
            db_failure(e)
        })?;
        provisioned.store(true, Ordering::Release);
    }
    Ok(db)
}

/// Username and password from a form, a multipart form or JSON.
fn credentials(content_type: &str, body: Vec<u8>) -> Result<(String, String), ApiError> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut username = None;
    let mut password = None;
    match media.as_str() {
        "application/x-www-form-urlencoded" => {
            for (key, value) in form_urlencoded::parse(&body) {
                match key.as_ref() {
                    "username" => username = Some(value.into_owned()),
                    "password" => password = Some(value.into_owned()),
                    _ => {}
                }
            }
        }
        "multipart/form-data" => {
            let fields =
                multipart::fields(content_type, &body).map_err(|e| invalid_body(&e.to_string()))?;
            for (key, value) in fields {
                match key.as_str() {
                    "username" => username = Some(value),
                    "password" => password = Some(value),
                    _ => {}
                }
            }
        }
        "application/json" => {
            let fields = json_object(&body)?;
            let text = |name: &str| match fields.get(name) {
                Some(Field::Other(Json::String(s))) => Some(s.clone()),
                _ => None,
            };
            username = text("username");
            password = text("password");
        }
        _ => return Err(ApiError::UnsupportedMediaType),
    }
    let mut errors = Vec::new();
    for (name, value) in [("username", &username), ("password", &password)] {
        if value.as_deref().is_none_or(str::is_empty) {
            errors.push(FieldError::new(
                "missing",
                &["body", name],
                "Field required",
                None,
            ));
        }
    }
    match (username, password) {
        (Some(u), Some(p)) if errors.is_empty() => Ok((u, p)),
        _ => Err(ApiError::Validation(errors)),
    }
}

fn invalid_body(message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        "value_error",
        &["body"],
        message,
        None,
    )])
}

/// The refresh token from a JSON body, else from the cookie.
fn refresh_token(body: &[u8], cookie_header: Option<&str>) -> Result<String, ApiError> {
    let invalid = ApiError::Unauthorized("Invalid refresh token");
    if !body.iter().all(u8::is_ascii_whitespace) {
        let fields = json_object(body)?;
        if let Some(Field::Other(Json::String(token))) = fields.get("refresh_token") {
            return Ok(token.clone());
        }
    }
    cookie::refresh_token(cookie_header).ok_or(invalid)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn random_secret() -> Result<String, ApiError> {
    new_refresh_token().map_err(|_| ApiError::Internal)
}

fn set_cookie(response: &mut ApiResponse, token: &str, max_age: i64, secure: bool) {
    if let Ok(value) = cookie::set_cookie(token, max_age, secure).parse() {
        response.headers_mut().insert("set-cookie", value);
    }
}

/// The token response for a user's session, with a fresh refresh token
/// (its cookie kept for `refresh_ttl`, what is left of the session).
async fn tokens<V: Variables>(
    variables: &V,
    user: &User,
    session: &str,
    refresh: &str,
    refresh_ttl: i64,
    secure: bool,
) -> Result<ApiResponse, ApiError> {
    let access_ttl = number(variables, "access_token_ttl_seconds").await?;
    let keys = token_keys(variables).await?;
    let issued_at = now();
    let access = keys
        .issue(&Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            role: user.role.clone(),
            iat: issued_at,
            exp: issued_at + access_ttl as u64,
            jti: session.to_string(),
            iss: variable(variables, "jwt_issuer").await?,
            aud: variable(variables, "jwt_audience").await?,
        })
        .map_err(|_| ApiError::Internal)?;
    let mut response = json(
        200,
        &json!({ "access_token": access, "token_type": "bearer", "expires_in": access_ttl, "refresh_token": refresh }),
    );
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    set_cookie(&mut response, refresh, refresh_ttl, secure);
    Ok(response)
}

async fn token<P: Platform>(
    platform: &P,
    db: &P::Database,
    username: &str,
    password: &str,
    client_addr: &str,
    secure: bool,
) -> Result<ApiResponse, ApiError> {
    let variables = platform.variables();
    let policy = LoginPolicy {
        max_failures: number(variables, "login_max_failures").await?,
        lockout_secs: number(variables, "login_lockout_seconds").await?,
        user_max_failures: number(variables, "login_user_max_failures").await?,
        user_window_secs: number(variables, "login_user_window_seconds").await?,
    };
    let kept = &platform.first_use().passwords;
    let passwords = match kept.get() {
        Some(passwords) => passwords,
        None => {
            let cost = number(variables, "bcrypt_cost").await? as u32;
            let made = Bcrypt::new(cost).map_err(|_| ApiError::Internal)?;
            kept.get_or_init(|| made)
        }
    };
    let user = login::check(db, passwords, policy, username, password, client_addr).await?;
    let session = uuid::Uuid::new_v4().simple().to_string();
    let refresh = random_secret()?;
    let lifetime = Lifetime {
        ttl_secs: number(variables, "refresh_token_ttl_seconds").await?,
        max_secs: number(variables, "refresh_session_max_seconds").await?,
    };
    sessions::create(db, &session, user.id, &digest(&refresh), lifetime)
        .await
        .map_err(db_failure)?;
    tokens(
        variables,
        &user,
        &session,
        &refresh,
        lifetime.first_ttl_secs(),
        secure,
    )
    .await
}

async fn refresh<V: Variables, D: Database>(
    variables: &V,
    db: &D,
    presented: &str,
    secure: bool,
) -> Result<ApiResponse, ApiError> {
    let invalid = ApiError::Unauthorized("Invalid refresh token");
    let next = random_secret()?;
    let refresh_ttl = number(variables, "refresh_token_ttl_seconds").await?;
    match sessions::rotate(db, &digest(presented), &digest(&next), refresh_ttl)
        .await
        .map_err(db_failure)?
    {
        Refresh::Rotated {
            session_id,
            user_id,
            expires_in_secs,
        } => {
            let user = users::get(db, user_id).await.map_err(db_failure)?;
            match user {
                Some(user) if user.is_active => {
                    tokens(
                        variables,
                        &user,
                        &session_id,
                        &next,
                        expires_in_secs,
                        secure,
                    )
                    .await
                }
                _ => {
                    sessions::revoke(db, &session_id)
                        .await
                        .map_err(db_failure)?;
                    Err(invalid)
                }
            }
        }
        Refresh::Reused | Refresh::Invalid => Err(invalid),
    }
}
