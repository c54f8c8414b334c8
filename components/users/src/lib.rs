//! `/users`, `/users/me`, `/users/{id}`: registration, the caller's
//! profile, admin listing.
//!
//! The Spin component is only this adapter: the handler is
//! `nexa_api::handlers::users` (which the native twin, `nexa-twin`, serves too).
#![cfg(target_arch = "wasm32")]

use nexa_api::handlers::users;
use nexa_api::http::ApiResponse;
use nexa_api::http::spin::serve;
use nexa_api::platform::spin::SpinPlatform;
use spin_sdk::http::Request;
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> ApiResponse {
    serve(request, |request| users::handle(&SpinPlatform, request)).await
}
