//! Code shared by Nexa's API components (auth, users, items, health), laid
//! out by concern:
//!
//! - the domain: [`items`], [`users`], [`price`], [`validation`] of request
//!   bodies and queries, and the API's [`error`]s;
//! - [`auth`]: access tokens, who is calling, logging in and its throttling,
//!   refresh tokens;
//! - [`repository`]: every SQL statement, one module per table or aggregate,
//!   and the schema's migrations;
//! - [`storage`]: the small [`storage::Database`] trait the repository is
//!   written against, with its adapters (spin-sdk's Postgres and SQLite in
//!   components; sqlx and rusqlite natively, behind the `native` feature);
//! - the HTTP edge: the [`routes`] table, the read [`cache`]'s entries,
//!   [`http`] requests and responses, and component [`variables`];
//! - the [`handlers`] of the health, items, auth and users components,
//!   written against the small [`platform`] traits (database, key-value
//!   store, variables), so the same code serves in a component and in the
//!   native twin (`nexa-twin`).
//!
//! Everything but the wasm32 adapters is plain Rust, tested natively.

pub mod auth;
pub mod cache;
pub mod error;
pub mod handlers;
pub mod http;
pub mod items;
pub mod platform;
pub mod price;
pub mod repository;
pub mod routes;
pub mod storage;
pub mod users;
pub mod validation;
pub mod variables;
