//! Outbound HTTP (`wasi:http/client@0.3.0`): one pooled hyper client shared by
//! every instance, requests checked against the component's
//! `allowed_outbound_hosts` (denied → the WIT's `HTTP-request-denied`), and
//! `http://<component-id>.spin.internal` routed in-process to that component
//! (Spin's service chaining) without a socket.

use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::Instrument;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::{AppContext, Capability, ComponentContext};
use crate::capabilities::allowed_hosts::AllowedHosts;
use crate::store::StoreData;

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

/// What a chained request turns into: the callee's response, or why not.
pub type ChainedResponse =
    Pin<Box<dyn Future<Output = anyhow::Result<http::Response<WasiBody>>> + Send>>;

/// The app's components as service chaining reaches them
/// (`http://<id>.spin.internal`), in-process. Implemented by the edge, so a
/// chained request passes the same pipeline as a socket request, and this
/// module does not depend on how components are loaded or served.
pub trait ServiceChaining: Send + Sync {
    /// Hands `request` to component `id`, which must answer within `timeout`;
    /// `None` when the app has no such component. A failure of the callee
    /// is a response (the JSON error a client would get), not an `Err`.
    fn dispatch(
        &self,
        id: &str,
        request: http::Request<WasiBody>,
        timeout: Duration,
    ) -> Option<ChainedResponse>;
}

/// The app's outbound client and the components service chaining can reach.
pub struct OutboundHttpState {
    config: OutboundHttpConfig,
    client: HttpsClient,
    components: OnceLock<Weak<dyn ServiceChaining>>,
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
    pub fn set_components(&self, components: Weak<dyn ServiceChaining>) {
        let _ = self.components.set(components);
    }
}

/// What one component may reach.
pub struct OutboundHttpGrant {
    pub component: String,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub state: Arc<OutboundHttpState>,
}

/// The outbound HTTP capability (`wasi:http/client`, linked from
/// wasmtime-wasi-http; this host supplies the hooks that send).
pub struct OutboundHttp;

impl HasData for OutboundHttp {
    type Data<'a> = &'a mut OutboundHttpHooks;
}

impl Capability for OutboundHttp {
    const NAME: &'static str = "outbound-http";
    type State = OutboundHttpState;
    type Grant = OutboundHttpGrant;
    type InstanceState = OutboundHttpHooks;

    fn build(_: &AppContext<'_>) -> anyhow::Result<OutboundHttpState> {
        Ok(OutboundHttpState::new(OutboundHttpConfig::default()))
    }

    fn grant(
        state: &Arc<OutboundHttpState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<OutboundHttpGrant> {
        Ok(OutboundHttpGrant {
            component: component.id.to_string(),
            allowed_hosts: component.allowed_hosts.clone(),
            state: state.clone(),
        })
    }

    fn new_instance(grant: &Arc<OutboundHttpGrant>) -> OutboundHttpHooks {
        OutboundHttpHooks {
            grant: grant.clone(),
        }
    }

    fn view<'a>(
        _: &'a mut ResourceTable,
        _: &'a Arc<OutboundHttpGrant>,
        hooks: &'a mut OutboundHttpHooks,
    ) -> &'a mut OutboundHttpHooks {
        hooks
    }

    /// `wasi:http/types` and `wasi:http/client`; wasmtime-wasi-http reaches the
    /// hooks through the store's `WasiHttpView`, not through `view`.
    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        _: fn(&mut StoreData) -> &mut OutboundHttpHooks,
    ) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p3::add_to_linker(linker)
    }
}

/// The hooks wasmtime-wasi-http calls for a guest's outgoing request.
pub struct OutboundHttpHooks {
    grant: Arc<OutboundHttpGrant>,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundHttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let grant = self.grant.clone();
        // The same span and result event bindgen puts around Spin's imports,
        // so outbound calls are recorded with every other capability call.
        let span =
            tracing::trace_span!("wit-bindgen import", module = "client", function = "send",);
        Box::new(
            async move {
                let result = send(&grant, request, options).await.map(|response| {
                    let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                        Box::new(async { Ok(()) });
                    (response, done)
                });
                // `Ok(Err(..))` is how a refused or failed request reads to the
                // recorder: an error returned to the guest, not a trap.
                let outcome: Result<Result<(), &Error>, ()> = Ok(result.as_ref().map(|_| ()));
                tracing::trace!(result = ?outcome, "return");
                result
            }
            .instrument(span),
        )
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

    // The call's client span continues the trace at the callee (a chained
    // component or any other service).
    if let (Some(tracing), Some(trace)) = (
        crate::telemetry::traces::Tracing::get(),
        crate::capabilities::calls::current_call_trace(),
    ) {
        tracing::event!(
            target: crate::capabilities::calls::SPAN_ATTRIBUTES,
            tracing::Level::TRACE,
            http.request.method = request.method().as_str(),
            server.address = host.as_str(),
            url.scheme = scheme.as_str(),
            url.path = uri.path(),
        );
        tracing.inject(&trace, request.headers_mut());
    }

    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(grant.state.config.first_byte_timeout)
        .min(grant.state.config.first_byte_timeout);
    if let Some(target) = host.strip_suffix(INTERNAL_SUFFIX) {
        // The callee must answer within what the caller waits for headers.
        return chain(grant, target, request, first_byte_timeout)
            .await
            .inspect(record_status);
    }

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
    record_status(&response);
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

/// The response status on the call's trace span.
fn record_status<B>(response: &http::Response<B>) {
    tracing::event!(
        target: crate::capabilities::calls::SPAN_ATTRIBUTES,
        tracing::Level::TRACE,
        http.response.status_code = i64::from(response.status().as_u16()),
    );
}

/// Service chaining: hands the request to another component of this app,
/// through the same edge pipeline as a socket request (request id, `spin-*`
/// headers, deadline), minus the socket.
async fn chain(
    grant: &OutboundHttpGrant,
    target: &str,
    request: http::Request<WasiBody>,
    timeout: Duration,
) -> Result<http::Response<WasiBody>, Error> {
    let components = grant
        .state
        .components
        .get()
        .and_then(Weak::upgrade)
        .ok_or(Error::DestinationUnavailable)?;
    let response = components
        .dispatch(target, request, timeout)
        .ok_or(Error::DestinationNotFound)?;
    response.await.map_err(|error| {
        tracing::warn!(component = target, error = %format!("{error:#}"), "chained request failed");
        Error::InternalError(Some(format!("component {target} failed")))
    })
}
