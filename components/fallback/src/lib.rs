//! Routed at `/...`: answers every path that no other route matches with a
//! JSON 404, so unknown routes look the same under Spin (whose own 404 has an
//! empty body) and under `nexa up`.
#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{Request, Response, StatusCode};
use spin_sdk::http_service;

#[http_service]
async fn handle(_request: Request) -> Response<String> {
    let mut response = Response::new(r#"{"detail":"Not Found"}"#.to_string());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    response
}
