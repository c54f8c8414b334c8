//! Routed at `/...`: the dashboard (the frontend build, embedded at compile
//! time), the OpenAPI document at `/openapi.json` and its page at
//! `/api-docs`, and a JSON 404 for every other path, so unknown routes look
//! the same under Spin (whose own 404 has an empty body) and under `nexa up`.

pub mod site;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::borrow::Cow;

    use crate::site::{self, Asset, Embedded, Site};
    use spin_sdk::http::{FullBody, Request, Response, StatusCode};
    use spin_sdk::http_service;

    static SITE: Site = Site {
        assets: include!(concat!(env!("OUT_DIR"), "/assets.rs")),
        connect_src: include_str!(concat!(env!("OUT_DIR"), "/connect-src.txt")),
    };

    #[http_service]
    async fn handle(request: Request) -> Response<FullBody<bytes::Bytes>> {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let reply = site::serve(
            SITE,
            site::Request {
                method: request.method().as_str(),
                path: request.uri().path(),
                accept_encoding: header("accept-encoding"),
                if_none_match: header("if-none-match"),
            },
        );
        let body = match reply.body {
            Cow::Borrowed(embedded) => bytes::Bytes::from_static(embedded),
            Cow::Owned(inflated) => bytes::Bytes::from(inflated),
        };
        let mut response = Response::new(FullBody::new(body));
        *response.status_mut() =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in reply.headers {
            if let Ok(value) = value.parse() {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
