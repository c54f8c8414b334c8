//! `/users`, `/users/me`, `/users/{id}`: registration (open, or admin-only
//! when `allow_registration` is false), the caller's profile, admin listing.

use serde_json::Value as Json;

use super::open_migrated;
use crate::auth::login::hash_password;
use crate::auth::{self, Principal};
use crate::error::{ApiError, db_failure};
use crate::http::{ApiRequest, ApiResponse, json};
use crate::platform::{Platform, Variables};
use crate::repository::users::{self, CreateError};
use crate::routes::Endpoint;
use crate::storage::Database;
use crate::users::{User, new_user};
use crate::validation::{self, json_object};
use crate::variables::{number, token_keys, variable};

pub async fn handle<P: Platform>(
    platform: &P,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let variables = platform.variables();
    let (matched, authorization, query, body) = request.parts();

    let db = open_migrated(platform).await?;
    match (matched.endpoint, matched.id) {
        (Endpoint::CreateUser, _) => {
            // Registration is open to anyone unless disabled; an admin may
            // always register users, and only an admin may set a role.
            let registrar: Option<Principal> = match authorization {
                Some(_) => Some(caller(variables, &db, authorization.as_deref()).await?),
                None => None,
            };
            let is_admin = registrar.as_ref().is_some_and(|p| p.is_admin);
            if !is_admin && variable(variables, "allow_registration").await?.trim() != "true" {
                return Err(ApiError::Forbidden("Registration is disabled"));
            }
            if !request.is_json() {
                return Err(ApiError::UnsupportedMediaType);
            }
            let new = new_user(&json_object(body)?)?;
            if new.role.is_some() && !is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            let cost = number(variables, "bcrypt_cost").await? as u32;
            let hash = hash_password(&new.password, cost).map_err(|_| ApiError::Internal)?;
            let user = users::create(&db, &new, &hash).await.map_err(|e| match e {
                CreateError::EmailTaken => ApiError::Conflict("Email already registered"),
                CreateError::UsernameTaken => ApiError::Conflict("Username already taken"),
                CreateError::Db(e) => db_failure(e),
            })?;
            let mut response = json(201, &user.to_json());
            if let Ok(location) = format!("/users/{}", user.id).parse() {
                response.headers_mut().insert("location", location);
            }
            Ok(response)
        }
        (Endpoint::ListUsers, _) => {
            let principal = caller(variables, &db, authorization.as_deref()).await?;
            if !principal.is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            let page = validation::page(query)?;
            let all = users::list(&db, page.skip, page.limit)
                .await
                .map_err(db_failure)?;
            Ok(json(
                200,
                &Json::from(all.iter().map(User::to_json).collect::<Vec<_>>()),
            ))
        }
        (Endpoint::CurrentUser, _) => {
            let principal = caller(variables, &db, authorization.as_deref()).await?;
            let user = users::get(&db, principal.user_id)
                .await
                .map_err(db_failure)?;
            user.map(|u| json(200, &u.to_json()))
                .ok_or(ApiError::Unauthorized("Invalid authentication credentials"))
        }
        (Endpoint::GetUser, Some(id)) => {
            let principal = caller(variables, &db, authorization.as_deref()).await?;
            if principal.user_id != id && !principal.is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            let user = users::get(&db, id).await.map_err(db_failure)?;
            user.map(|u| json(200, &u.to_json()))
                .ok_or(ApiError::NotFound("User not found"))
        }
        // Another component's route: spin.toml never sends it here.
        _ => Err(ApiError::NotFound("Not Found")),
    }
}

async fn caller<V: Variables, D: Database>(
    variables: &V,
    db: &D,
    authorization: Option<&str>,
) -> Result<Principal, ApiError> {
    auth::authenticate(db, &token_keys(variables).await?, authorization).await
}
