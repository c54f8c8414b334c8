//! spin-sdk's requests (wasm32) handed to [`super::serve`]: spin-sdk's
//! request and response are the `http` crate's, so only the body is read here.

use spin_sdk::http::Request;
use spin_sdk::http::body::IncomingBodyExt;

use super::{ApiRequest, ApiResponse};
use crate::error::ApiError;

/// [`super::serve`] for a component's request.
pub async fn serve<F, Fut>(request: Request, handler: F) -> ApiResponse
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = Result<ApiResponse, ApiError>>,
{
    let (parts, body) = request.into_parts();
    let body = async move {
        body.bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|_| ApiError::Internal)
    };
    super::serve(parts, body, handler).await
}
