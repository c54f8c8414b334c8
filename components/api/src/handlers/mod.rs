//! The API's request handlers, one module per component (health, items,
//! auth, users), written against a [`Platform`] so the same code serves in
//! a component (spin-sdk) and in the native twin (`nexa-twin`).

pub mod auth;
pub mod health;
pub mod items;
pub mod users;

use std::sync::atomic::Ordering;

use crate::error::{ApiError, db_failure};
use crate::http::{ApiRequest, ApiResponse};
use crate::platform::Platform;
use crate::repository::schema;
use crate::variables::variable;

/// Which handler serves a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Health,
    Items,
    Auth,
    Users,
}

impl Handler {
    /// The handler of the component with this id in spin.toml.
    pub fn for_component(id: &str) -> Option<Self> {
        match id {
            "health" => Some(Handler::Health),
            "items" => Some(Handler::Items),
            "auth" => Some(Handler::Auth),
            "users" => Some(Handler::Users),
            _ => None,
        }
    }

    pub async fn handle<P: Platform>(
        self,
        platform: &P,
        request: ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        match self {
            Handler::Health => health::handle(platform, request).await,
            Handler::Items => items::handle(platform, request).await,
            Handler::Auth => auth::handle(platform, request).await,
            Handler::Users => users::handle(platform, request).await,
        }
    }
}

/// The app's database (`database_url`), with the schema brought up to date
/// (and seeded, without the admin's password) on this component's first use.
pub async fn open_migrated<P: Platform>(platform: &P) -> Result<P::Database, ApiError> {
    let url = variable(platform.variables(), "database_url").await?;
    let db = platform.open_database(&url).await.map_err(db_failure)?;
    let migrated = &platform.first_use().migrated;
    if !migrated.load(Ordering::Acquire) {
        schema::migrate(&db).await.map_err(|e| {
            eprintln!("migrating: {e}");
            db_failure(e)
        })?;
        migrated.store(true, Ordering::Release);
    }
    Ok(db)
}
