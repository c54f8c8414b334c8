//! Responses for components (wasm32): JSON bodies and the one place an
//! `ApiError` becomes a response.

use serde_json::Value as Json;
use spin_sdk::http::{Request, Response, StatusCode};

use crate::error::ApiError;

/// A JSON response from already-serialized text.
pub fn json_text(status: u16, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    response
}

pub fn json(status: u16, body: &Json) -> Response<String> {
    json_text(status, body.to_string())
}

/// 204 No Content.
pub fn no_content() -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A handler's outcome as the response: the one place components turn an
/// `ApiError` into HTTP.
pub fn respond(outcome: Result<Response<String>, ApiError>) -> Response<String> {
    outcome.unwrap_or_else(|error| error_response(&error))
}

pub fn error_response(error: &ApiError) -> Response<String> {
    let mut response = json(error.status(), &error.body());
    for (name, value) in error.headers() {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// A request header as text.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether the request's content type is JSON (any parameters allowed).
pub fn is_json(request: &Request) -> bool {
    header(request, "content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/json")
    })
}
