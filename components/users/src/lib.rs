//! `/users`, `/users/me`, `/users/{id}`: registration (open, or admin-only
//! when `allow_registration` is false), the caller's profile, admin listing.
#![cfg(target_arch = "wasm32")]

use nexa_api::auth::login::hash_password;
use nexa_api::auth::{self, Principal};
use nexa_api::error::{ApiError, db_failure};
use nexa_api::http::{ApiRequest, json, serve};
use nexa_api::repository::users::{self, CreateError};
use nexa_api::routes::Endpoint;
use nexa_api::storage::spin::{SpinDatabase, open_migrated};
use nexa_api::users::{User, new_user};
use nexa_api::validation::{self, json_object};
use nexa_api::variables::{number, token_keys, variable};
use serde_json::Value as Json;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> Response<String> {
    serve(request, handle_users).await
}

async fn handle_users(request: ApiRequest) -> Result<Response<String>, ApiError> {
    let (matched, authorization, query, body) = request.parts();

    let db = open_migrated().await?;
    match (matched.endpoint, matched.id) {
        (Endpoint::CreateUser, _) => {
            // Registration is open to anyone unless disabled; an admin may
            // always register users, and only an admin may set a role.
            let registrar: Option<Principal> = match authorization {
                Some(_) => Some(caller(&db, authorization.as_deref()).await?),
                None => None,
            };
            let is_admin = registrar.as_ref().is_some_and(|p| p.is_admin);
            if !is_admin && variable("allow_registration").await?.trim() != "true" {
                return Err(ApiError::Forbidden("Registration is disabled"));
            }
            if !request.is_json() {
                return Err(ApiError::UnsupportedMediaType);
            }
            let new = new_user(&json_object(body)?)?;
            if new.role.is_some() && !is_admin {
                return Err(ApiError::Forbidden("Not enough permissions"));
            }
            let cost = number("bcrypt_cost").await? as u32;
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
            let principal = caller(&db, authorization.as_deref()).await?;
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
            let principal = caller(&db, authorization.as_deref()).await?;
            let user = users::get(&db, principal.user_id)
                .await
                .map_err(db_failure)?;
            user.map(|u| json(200, &u.to_json()))
                .ok_or(ApiError::Unauthorized("Invalid authentication credentials"))
        }
        (Endpoint::GetUser, Some(id)) => {
            let principal = caller(&db, authorization.as_deref()).await?;
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

async fn caller(db: &SpinDatabase, authorization: Option<&str>) -> Result<Principal, ApiError> {
    auth::authenticate(db, &token_keys().await?, authorization).await
}
