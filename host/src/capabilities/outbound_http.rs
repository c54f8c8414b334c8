//! Outbound HTTP (`wasi:http/client@0.3.0`): one pooled hyper client shared by
//! every instance, requests checked against the component's
//! `allowed_outbound_hosts` (denied → the WIT's `HTTP-request-denied`), and
//! `http://<component-id>.spin.internal` routed in-process to that component
//! (Spin's service chaining) without a socket.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::app::LoadedComponent;
use crate::capabilities::allowed_hosts::AllowedHosts;

/// The suffix of in-process service-chaining hosts.
const INTERNAL_SUFFIX: &str = ".spin.internal";

/// How outbound requests are made.
#[derive(Debug, Clone)]
pub struct OutboundHttpConfig {
    /// Connecting gives up after this long unless the guest asks for less. Default 10 s.
    pub connect_timeout: Duration,
    /// Waiting for response headers gives up after this long unless the guest
    /// asks for less. Default 60 s.
    pub first_byte_timeout: Duration,
    /// Idle pooled connections are closed after this long. Default 30 s.
    pub pool_idle_timeout: Duration,
}

impl Default for OutboundHttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(30),
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, WasiBody>;

/// The app's outbound client and the components service chaining can reach.
pub struct OutboundHttpState {
    config: OutboundHttpConfig,
    client: HttpsClient,
    components: OnceLock<Weak<HashMap<String, LoadedComponent>>>,
}

impl OutboundHttpState {
    pub fn new(config: OutboundHttpConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .build(connector);
        Self {
            config,
            client,
            components: OnceLock::new(),
        }
    }

    /// Makes the app's components reachable at `<id>.spin.internal`; called
    /// once they are loaded.
    pub fn set_components(&self, components: &Arc<HashMap<String, LoadedComponent>>) {
        let _ = self.components.set(Arc::downgrade(components));
    }
}

/// What one component may reach.
pub struct OutboundHttpGrant {
    pub component: String,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub state: Arc<OutboundHttpState>,
}

/// The hooks wasmtime-wasi-http calls for a guest's outgoing request.
pub struct OutboundHttp {
    pub grant: Arc<OutboundHttpGrant>,
}

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
        options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let grant = self.grant.clone();
        Box::new(async move {
            let response = send(&grant, request, options).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

async fn send(
    grant: &OutboundHttpGrant,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, Error> {
    let uri = request.uri().clone();
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let host = uri
        .host()
        .ok_or(Error::HttpRequestUriInvalid)?
        .to_ascii_lowercase();
    let port = uri.port_u16();
    if !grant.allowed_hosts.allows(&scheme, &host, port) {
        tracing::warn!(
            component = %grant.component,
            "denied an outbound request to {scheme}://{host}{}: add it to allowed_outbound_hosts to allow it",
            port.map(|p| format!(":{p}")).unwrap_or_default()
        );
        return Err(Error::HttpRequestDenied);
    }

    if let Some(target) = host.strip_suffix(INTERNAL_SUFFIX) {
        return chain(grant, target, request).await;
    }

    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(grant.state.config.first_byte_timeout)
        .min(grant.state.config.first_byte_timeout);
    request.headers_mut().remove(http::header::HOST);
    let response = tokio::time::timeout(first_byte_timeout, grant.state.client.request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(|error| {
            tracing::debug!(%error, "outbound request failed");
            if error.is_connect() {
                Error::ConnectionRefused
            } else {
                Error::ConnectionTerminated
            }
        })?;
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

/// Service chaining: hands the request to another component of this app.
async fn chain(
    grant: &OutboundHttpGrant,
    target: &str,
    mut request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error> {
    let components = grant
        .state
        .components
        .get()
        .and_then(Weak::upgrade)
        .ok_or(Error::DestinationUnavailable)?;
    let component = components.get(target).ok_or(Error::DestinationNotFound)?;
    let path = request.uri().path().to_string();
    let full_url = request.uri().to_string();
    let headers = request.headers_mut();
    headers.remove(http::header::HOST);
    let spoofed: Vec<_> = headers
        .keys()
        .filter(|name| crate::routes::is_spin_header(name.as_str()))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(&name);
    }
    // As for a request matched by a `/...` route.
    for (name, value) in [
        ("spin-full-url", full_url.as_str()),
        ("spin-path-info", path.as_str()),
        ("spin-matched-route", "/..."),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", "/..."),
        ("spin-component-route", ""),
        ("spin-client-addr", "127.0.0.1:0"),
    ] {
        headers.insert(
            http::HeaderName::from_static(name),
            crate::routes::header_value(value),
        );
    }
    component
        .handler
        .handle((), request)
        .await
        .map_err(|error| {
            tracing::warn!(component = %component.id, error = %format!("{error:#}"), "chained request failed");
            Error::InternalError(Some(format!("component {} failed", component.id)))
        })
}
