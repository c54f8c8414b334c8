//! `/items` and `/items/{id}`: public reads through the read cache,
//! owner-or-admin writes.
//!
//! The Spin component is only this adapter: the handler is
//! `nexa_api::handlers::items` (which the native twin, `nexa-twin`, serves too).
#![cfg(target_arch = "wasm32")]

use nexa_api::handlers::items;
use nexa_api::http::ApiResponse;
use nexa_api::http::spin::serve;
use nexa_api::platform::spin::SpinPlatform;
use spin_sdk::http::Request;
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> ApiResponse {
    serve(request, |request| items::handle(&SpinPlatform, request)).await
}
