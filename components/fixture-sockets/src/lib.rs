//! Opens a raw TCP socket, which pulls `wasi:sockets` into the component's
//! imports. Hosts must refuse to load it: the Nexa world has no sockets.
#![cfg(target_arch = "wasm32")]

use spin_sdk::http::{Request, Response};
use spin_sdk::http_service;

#[http_service]
async fn handle(_request: Request) -> Response<String> {
    let outcome = std::net::TcpStream::connect("127.0.0.1:5432");
    Response::new(format!("{:?}", outcome.is_ok()))
}
