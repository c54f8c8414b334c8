//! Traces: a real OTLP receiver (gRPC through the trace service that
//! `opentelemetry-proto` generates for tonic, or HTTP with protobuf bodies)
//! runs inside the test; the host exports to it and the test decodes what
//! really arrived: span names, parents, attributes, status.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{Value, json};

use crate::metrics::{sample, scrape};
use crate::services::TestDatabase;
use crate::support::{AppDir, Host, SECRET_RUNTIME_CONFIG, fixture_manifest, unique};

/// What the receiver got: each span with its resource's `service.name`.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.0.lock().unwrap();
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push((service.clone(), span));
                }
            }
        }
    }

    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what arrived (spans come in batches).
    fn wait_for(&self, what: &str, done: impl Fn(&[(String, Span)]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans.into_iter().map(|(_, span)| span).collect();
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not received; got {:#?}",
                spans
                    .iter()
                    .map(|(service, s)| (service, &s.name, hex(&s.trace_id)))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct GrpcReceiver(Received);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// Starts a receiver on a free port; returns its base URL.
pub async fn start_receiver(protocol: Protocol) -> (String, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    match protocol {
        Protocol::Grpc => {
            let service = TraceServiceServer::new(GrpcReceiver(received.clone()));
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
        }
        Protocol::HttpProtobuf => {
            let sink = received.clone();
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let sink = sink.clone();
                    async move {
                        let request = ExportTraceServiceRequest::decode(body).unwrap();
                        sink.add(request);
                        (
                            [("content-type", "application/x-protobuf")],
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    (format!("http://{address}"), received)
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    string_attribute(&span.attributes, key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_error(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// The fixture with key-value, SQLite, Postgres and service chaining to a
/// private copy of itself (`internal`), exporting to `endpoint`.
fn start_traced(endpoint: &str, protocol: Protocol, service: &str) -> (AppDir, Host) {
    let mut manifest = fixture_manifest(
        "key_value_stores = [\"default\"]\nsqlite_databases = [\"default\"]\n\
         allowed_outbound_hosts = [\"http://internal.spin.internal\", \"postgres://127.0.0.1:5432\"]",
    );
    manifest.push_str(
        "[[trigger.http]]\nroute = { private = true }\ncomponent = \"internal\"\n\
         [component.internal]\nsource = \"{fixture}\"\n",
    );
    let app = AppDir::new(&manifest);
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    app.write("nexa.toml", "trace_shutdown_timeout_ms = 1000\n");
    let protocol = match protocol {
        Protocol::Grpc => "grpc",
        Protocol::HttpProtobuf => "http/protobuf",
    };
    let host = app.start_with_env(
        &[
            "--runtime-config-file",
            app.path("rc.toml").to_str().unwrap(),
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_SERVICE_NAME", service),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    (app, host)
}

/// Sends `request`; returns the status and the trace id of `traceresponse`.
async fn traced(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let header = response.headers()["traceresponse"].to_str().unwrap();
    (status, header.split('-').nth(1).unwrap().to_string())
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn requests_and_every_capability_call_are_spans_of_one_trace() {
    let (endpoint, received) = start_receiver(Protocol::HttpProtobuf).await;
    let service = unique("nexa-traces");
    let (_app, host) = start_traced(&endpoint, Protocol::HttpProtobuf, &service);
    let db = TestDatabase::create();
    let client = host.client();

    // A client's trace is continued, and the response names it.
    let response = client
        .get(host.url("/fixture/ok"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let traceresponse = response.headers()["traceresponse"].to_str().unwrap();
    assert!(
        traceresponse.starts_with(&format!("00-{CLIENT_TRACE}-")),
        "{traceresponse}"
    );

    let (status, kv_trace) = traced(client.get(host.url("/fixture/kv/default/absent"))).await;
    assert_eq!(status, 404);
    let (status, sqlite_trace) = traced(
        client
            .post(host.url("/fixture/sqlite/default"))
            .json(&json!({ "sql": "SELECT 'do-not-export-me' AS word, 42 AS n", "params": [] })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, pg_trace) = traced(client.post(host.url("/fixture/pg")).json(&json!({
        "address": db.url(),
        "sql": "SELECT $1::text || 'and-not-me' AS t",
        "params": [{ "str": "x" }],
    })))
    .await;
    assert_eq!(status, 200);
    let (status, chain_trace) = traced(
        client
            .post(host.url("/fixture/http"))
            .json(&json!({ "url": "http://internal.spin.internal/fixture/ok" })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, trap_trace) = traced(client.get(host.url("/fixture/trap"))).await;
    assert_eq!(status, 500);

    // Capability spans are named "<capability> <operation>"; the operation
    // is the WIT function's (`query`, or an `-async` variant).
    let named = |span: &Span, name: &str| span.name.starts_with(name);
    let in_trace = |spans: &[(String, Span)], trace: &str, name: &str| {
        spans
            .iter()
            .any(|(_, s)| hex(&s.trace_id) == trace && named(s, name))
    };
    let spans = received.wait_for("every request's spans", |spans| {
        in_trace(spans, CLIENT_TRACE, "component fixture")
            && in_trace(spans, &kv_trace, "key-value get")
            && in_trace(spans, &sqlite_trace, "sqlite execute")
            && in_trace(spans, &pg_trace, "postgres query")
            && in_trace(spans, &chain_trace, "component internal")
            && in_trace(spans, &trap_trace, "component fixture")
    });
    assert!(
        received.spans().iter().all(|(s, _)| *s == service),
        "service.name is OTEL_SERVICE_NAME: {:?}",
        received
            .spans()
            .iter()
            .map(|(s, _)| s.clone())
            .collect::<std::collections::BTreeSet<_>>()
    );
    let find = |trace: &str, name: &str| -> Span {
        spans
            .iter()
            .find(|s| hex(&s.trace_id) == trace && named(s, name))
            .unwrap_or_else(|| panic!("{name} in {trace}"))
            .clone()
    };

    // The server span continues the client's, and the component's is its child.
    let server = find(CLIENT_TRACE, "GET /fixture/...");
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        attribute(&server, "http.route").as_deref(),
        Some("/fixture/...")
    );
    assert_eq!(
        attribute(&server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert!(traceresponse.contains(&hex(&server.span_id)));
    let component = find(CLIENT_TRACE, "component fixture");
    assert_eq!(component.parent_span_id, server.span_id);
    assert!(!is_error(&server) && !is_error(&component));

    // Key-value: under the component span, with the lookup's outcome.
    let kv_component = find(&kv_trace, "component fixture");
    let get = find(&kv_trace, "key-value get");
    assert_eq!(get.parent_span_id, kv_component.span_id);
    assert_eq!(
        attribute(&get, "nexa.key_value.hit").as_deref(),
        Some("false")
    );

    // SQL statements without their literal values.
    let sqlite = find(&sqlite_trace, "sqlite execute");
    assert_eq!(attribute(&sqlite, "db.system").as_deref(), Some("sqlite"));
    assert_eq!(
        attribute(&sqlite, "db.query.text").as_deref(),
        Some("SELECT ? AS word, ? AS n")
    );
    let postgres = find(&pg_trace, "postgres query");
    assert_eq!(
        attribute(&postgres, "db.system").as_deref(),
        Some("postgresql")
    );
    assert_eq!(
        attribute(&postgres, "db.operation.name").as_deref(),
        Some("SELECT")
    );
    assert_eq!(
        attribute(&postgres, "db.query.text").as_deref(),
        Some("SELECT $1::text || ? AS t")
    );
    let exported = format!("{spans:?}");
    assert!(!exported.contains("do-not-export-me") && !exported.contains("and-not-me"));

    // Service chaining: the callee's server span is a child of the caller's
    // outbound call, which is a client span under the caller's component.
    let caller = find(&chain_trace, "component fixture");
    let send = find(&chain_trace, "outbound-http send");
    assert_eq!(send.kind, SpanKind::Client as i32);
    assert_eq!(send.parent_span_id, caller.span_id);
    assert_eq!(
        attribute(&send, "http.response.status_code").as_deref(),
        Some("200")
    );
    let callee = spans
        .iter()
        .find(|s| {
            hex(&s.trace_id) == chain_trace
                && s.kind == SpanKind::Server as i32
                && s.parent_span_id == send.span_id
        })
        .expect("the callee's server span under the outbound call");
    let callee_component = find(&chain_trace, "component internal");
    assert_eq!(callee_component.parent_span_id, callee.span_id);

    // A trap: both spans are errors, the component's says what kind.
    let trap_server = find(&trap_trace, "GET /fixture/...");
    let trap_component = find(&trap_trace, "component fixture");
    assert!(is_error(&trap_server) && is_error(&trap_component));
    assert_eq!(
        attribute(&trap_component, "nexa.failure").as_deref(),
        Some("trap")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_a_grpc_collector() {
    let (endpoint, received) = start_receiver(Protocol::Grpc).await;
    let service = unique("nexa-grpc");
    let (_app, host) = start_traced(&endpoint, Protocol::Grpc, &service);
    let response = host
        .client()
        .get(host.url("/fixture/ok"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    received.wait_for("the server span over gRPC", |spans| {
        spans.iter().any(|(s, span)| {
            *s == service && hex(&span.trace_id) == CLIENT_TRACE && span.name == "GET /fixture/..."
        })
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_collector_neither_holds_requests_nor_shutdown() {
    // A port nothing listens on.
    let port = crate::services::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (_app, mut host) = start_traced(&endpoint, Protocol::HttpProtobuf, "nexa-dead");
    let client = host.client();
    let started = Instant::now();
    for _ in 0..50 {
        let response = client.get(host.url("/fixture/ok")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "50 requests took {:?}",
        started.elapsed()
    );
    // The failed exports are counted.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = scrape(&host).await;
        let dropped = sample(&metrics, "trace_spans_dropped_total").unwrap_or(0.0);
        if dropped > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dropped spans counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Shutdown waits for the collector at most trace_shutdown_timeout_ms.
    let stopping = Instant::now();
    let log = host.terminate_and_wait();
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}:\n{log}",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_carry_request_and_trace_ids() {
    let (endpoint, _received) = start_receiver(Protocol::HttpProtobuf).await;
    let (app, host) = start_traced(&endpoint, Protocol::HttpProtobuf, "nexa-logs");
    let response = host
        .client()
        .get(host.url("/fixture/ok"))
        .header("x-request-id", "log-line-test")
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // One access-log line per request, JSON, with the request's ids.
    let access = |text: &str| -> Option<Value> {
        crate::support::events(text)
            .into_iter()
            .find(|line| line["target"] == "nexa::access" && line["request_id"] == "log-line-test")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(line) = access(&host.log()) {
            break line;
        }
        assert!(Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(line["trace_id"], CLIENT_TRACE);
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16));
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "/fixture/...");
    assert_eq!(line["path"], "/fixture/ok");
    assert_eq!(line["method"], "GET");

    // The same lines are appended to <state-dir>/logs/nexa.log.
    let file = app.path(".spin/logs/nexa.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if access(&text).is_some() {
            assert!(text.contains("serving on http://"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no access line:\n{text}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn component_output_is_logged_per_line_tagged_and_rate_limited() {
    let (_app, host) = crate::support::fixture_host("");
    let response = host
        .client()
        .get(host.url("/fixture/print/3"))
        .header("x-request-id", "print-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let lines = |log: &str| -> Vec<Value> {
        crate::support::events(log)
            .into_iter()
            .filter(|line| line["target"] == "nexa::component")
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&host.log()).len() < 4 {
        assert!(Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = lines(&host.log());
    let first = output
        .iter()
        .find(|l| l["message"] == "fixture line 0")
        .expect("a stdout line");
    assert_eq!(first["component"], "fixture");
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["request_id"], "print-test");
    assert!(first["instance"].as_u64().is_some());
    let diagnostic = output
        .iter()
        .find(|l| l["message"] == "fixture diagnostic")
        .expect("the stderr line");
    assert_eq!(diagnostic["stream"], "stderr");

    // A chatty component: 5,000 lines in one request, most of them dropped
    // and counted rather than logged.
    let response = host
        .client()
        .get(host.url("/fixture/print/5000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged = lines(&host.log()).len();
    assert!(logged < 1000, "{logged} lines logged");
    let dropped = sample(
        &scrape(&host).await,
        r#"component_output_lines_dropped_total{component="fixture"}"#,
    )
    .unwrap_or(0.0);
    assert!(dropped >= 4000.0, "{dropped} dropped");
}
