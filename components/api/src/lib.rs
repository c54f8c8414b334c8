//! Code shared by Nexa's API components (auth, users, items). It holds no
//! Spin-specific code, so its rules are tested natively; the components wire
//! them to spin-sdk.

pub mod auth;
pub mod cache;
pub mod db;
pub mod error;
pub mod items;
pub mod jwt;
pub mod login;
pub mod multipart;
pub mod price;
pub mod routes;
pub mod schema;
pub mod sessions;
#[cfg(target_arch = "wasm32")]
pub mod spin_db;
#[cfg(target_arch = "wasm32")]
pub mod spin_http;
pub mod throttle;
pub mod users;
pub mod validation;
