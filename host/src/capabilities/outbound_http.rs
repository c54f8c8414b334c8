//! Outbound HTTP (`wasi:http/client@0.3.0`). Until the pooled client lands,
//! every request is refused with the WIT's `HTTP-request-denied`, as Spin
//! refuses a host missing from `allowed_outbound_hosts`.

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The hooks wasmtime-wasi-http calls for a guest's outgoing request.
pub struct OutboundHttp;

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        tracing::debug!(uri = %request.uri(), "outbound HTTP denied");
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
