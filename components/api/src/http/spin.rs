//! Requests and responses over spin-sdk (wasm32): [`serve`] reads a request
//! once, runs the handler, and is the one place an `ApiError` becomes a
//! response; every response carries `x-request-id`.

use serde_json::Value as Json;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{HeaderMap, Request, Response, StatusCode};

use super::request_id;
use crate::error::ApiError;
use crate::routes::{self, Matched};

/// A request as the API handlers read it: matched against the route table
/// (404/405 before anything else happens), then taken apart once.
pub struct ApiRequest {
    /// This request's id, as its response's `x-request-id` (for log lines).
    pub id: String,
    pub matched: Matched,
    pub headers: HeaderMap,
    /// The raw query string (`""` when there is none).
    pub query: String,
    pub body: Vec<u8>,
}

impl ApiRequest {
    async fn read(request: Request, id: String) -> Result<Self, ApiError> {
        let matched = routes::resolve(request.method().as_str(), request.uri().path())?;
        let query = request.uri().query().unwrap_or_default().to_string();
        let (parts, body) = request.into_parts();
        let body = body.bytes().await.map_err(|_| ApiError::Internal)?.to_vec();
        Ok(Self {
            id,
            matched,
            headers: parts.headers,
            query,
            body,
        })
    }

    /// What a resource handler reads: the route matched, the bearer
    /// `Authorization` header, the raw query and the body.
    pub fn parts(&self) -> (Matched, Option<String>, &str, &[u8]) {
        (
            self.matched,
            self.header("authorization"),
            &self.query,
            &self.body,
        )
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

/// Serves one request with `handler`: the request is matched against the
/// route table (404/405 before anything else) and read once, and the
/// handler's outcome becomes the response, an `ApiError` as its JSON. Every
/// response carries the request's `x-request-id`: the incoming one when it is
/// sane (the Nexa host passes its own on), else a new one.
pub async fn serve<F, Fut>(request: Request, handler: F) -> Response<String>
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = Result<Response<String>, ApiError>>,
{
    let id = request_id::assign(
        request
            .headers()
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let outcome = match ApiRequest::read(request, id.clone()).await {
        Ok(request) => handler(request).await,
        Err(error) => Err(error),
    };
    let mut response = outcome.unwrap_or_else(|error| error_response(&error));
    if let Ok(value) = id.parse() {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
}

fn error_response(error: &ApiError) -> Response<String> {
    let mut response = json(error.status(), &error.body());
    for (name, value) in error.headers() {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
