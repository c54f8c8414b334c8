//! Accepting connections: each served by hyper's HTTP/1 connection with a
//! header-read timeout, closed when idle past the keep-alive timeout, and at
//! most `max_connections` open at once — a connection beyond the cap gets a
//! 503 with `Retry-After` and is closed. Shutdown stops accepting, lets
//! in-flight requests finish (idle connections close at once) for at most
//! the grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How connections are held.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Counters for the metrics to come and for tests.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicUsize,
    /// Connections refused with 503 because `max_connections` were open.
    pub shed: AtomicU64,
}

/// Raises this process's open-file limit to its hard limit, so the
/// connection cap, not the descriptor table, is what bounds connections.
/// Returns the limit now in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: let some close.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Without this, responses written in pieces stall 40 ms on keep-alive
        // connections (Nagle + delayed ACK), as measured under Spin.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "TCP_NODELAY");
        }
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let router = router.clone();
                let stats = stats.clone();
                let stopping = stopping.clone();
                tokio::spawn(async move {
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    serve_connection(tcp, peer, router, limits, stopping).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    drop(slot);
                });
            }
            Err(_) => {
                stats.shed.fetch_add(1, Ordering::Relaxed);
                crate::metrics::Metrics::global()
                    .shed
                    .with_label_values(&["connections"])
                    .inc();
                tokio::spawn(refuse_connection(tcp, limits.header_read_timeout));
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "grace period over; dropping unfinished requests"
        );
    }
}

/// When the connection last finished a request, and how many it is serving.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` of the last request's end.
    last_done_ms: AtomicU64,
}

impl Activity {
    fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| {
            self.started + Duration::from_millis(self.last_done_ms.load(Ordering::Acquire))
        })
    }
}

/// Marks a request done when dropped (also when the connection is dropped
/// mid-request).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let elapsed = self.0.started.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(elapsed, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_done_ms: AtomicU64::new(0),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            let in_flight = InFlight(activity.clone());
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                // The response body may still be streaming; hyper's graceful
                // shutdown never cuts it, so "done" at its head is enough.
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        let idle_deadline = activity
            .idle_since()
            .map(|since| since + limits.keep_alive_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = sleep_until_or_recheck(idle_deadline), if !closing => {
                if activity.idle_since().is_some_and(|since| since.elapsed() >= limits.keep_alive_timeout) {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or for a while when the connection is busy (its
/// activity is checked again then).
async fn sleep_until_or_recheck(deadline: Option<Instant>) {
    let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
    tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
}

/// Answers one request on a connection over the cap with 503 and closes it.
async fn refuse_connection(tcp: TcpStream, header_read_timeout: Duration) {
    let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
        let body = serde_json::json!({
            "detail": "Too many open connections; retry shortly",
        });
        let response = http::Response::builder()
            .status(http::StatusCode::SERVICE_UNAVAILABLE)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::RETRY_AFTER, "1")
            .header(http::header::CONNECTION, "close")
            .body(Body::from(body.to_string()))
            .expect("static response");
        Ok::<_, Infallible>(response)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout.min(Duration::from_secs(5)))
        .keep_alive(false);
    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
}
