//! The handlers' HTTP layer, the same in a component and in the native twin:
//! a request read once ([`ApiRequest`]), responses as `http::Response<String>`
//! ([`ApiResponse`]), and [`serve`], the one place a handler's outcome
//! becomes a response. Also [`request_id`]s and lenient [`multipart`] form
//! reading. `spin` (wasm32) adapts spin-sdk's requests to it.

pub mod multipart;
pub mod request_id;
#[cfg(target_arch = "wasm32")]
pub mod spin;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value as Json;

use crate::error::ApiError;
use crate::routes::{self, Matched};

/// What every handler answers with: the `http` crate's response (which
/// spin-sdk's is, and axum's converts from).
pub type ApiResponse = http::Response<String>;

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
pub fn json_text(status: u16, body: String) -> ApiResponse {
    let mut response = ApiResponse::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

pub fn json(status: u16, body: &Json) -> ApiResponse {
    json_text(status, body.to_string())
}

/// 204 No Content.
pub fn no_content() -> ApiResponse {
    let mut response = ApiResponse::new(String::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Serves one request with `handler`: the request is matched against the
/// route table (404/405 before anything else, so `body` is read only for a
/// route that exists) and read once, and the handler's outcome becomes the
/// response, an `ApiError` as its JSON. Every response carries the request's
/// `x-request-id`: the incoming one when it is sane (the Nexa host passes its
/// own on), else a new one.
pub async fn serve<B, F, Fut>(request: http::request::Parts, body: B, handler: F) -> ApiResponse
where
    B: Future<Output = Result<Vec<u8>, ApiError>>,
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = Result<ApiResponse, ApiError>>,
{
    let id = request_id::assign(
        request
            .headers
            .get(request_id::HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let outcome = match routes::resolve(request.method.as_str(), request.uri.path()) {
        Ok(matched) => match body.await {
            Ok(body) => {
                handler(ApiRequest {
                    id: id.clone(),
                    matched,
                    query: request.uri.query().unwrap_or_default().to_string(),
                    headers: request.headers,
                    body,
                })
                .await
            }
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    let mut response = outcome.unwrap_or_else(|error| error_response(&error));
    if let Ok(value) = id.parse() {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
}

fn error_response(error: &ApiError) -> ApiResponse {
    let mut response = json(error.status(), &error.body());
    for (name, value) in error.headers() {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
