//! Requests and responses over spin-sdk (wasm32): JSON bodies and the one
//! place an `ApiError` becomes a response.

use serde_json::Value as Json;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{HeaderMap, Request, Response, StatusCode};

use crate::error::ApiError;
use crate::routes::{self, Matched};

/// A request as the API handlers read it: matched against the route table
/// (404/405 before anything else happens), then taken apart once.
pub struct ApiRequest {
    pub matched: Matched,
    pub headers: HeaderMap,
    /// The raw query string (`""` when there is none).
    pub query: String,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub async fn read(request: Request) -> Result<Self, ApiError> {
        let matched = routes::resolve(request.method().as_str(), request.uri().path())?;
        let query = request.uri().query().unwrap_or_default().to_string();
        let (parts, body) = request.into_parts();
        let body = body.bytes().await.map_err(|_| ApiError::Internal)?.to_vec();
        Ok(Self {
            matched,
            headers: parts.headers,
            query,
            body,
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Whether the body is declared as JSON (any parameters allowed).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
    }
}

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
