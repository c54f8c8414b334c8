//! The host's own health, for orchestrators, on the admin listener:
//! - `/livez`: the process serves. It never depends on a backend: restarting
//!   the host does not bring Postgres back, so a database outage must not
//!   turn into a restart loop.
//! - `/readyz`: the components are loaded, every Postgres and Redis the
//!   configuration names answers, and the host is not shutting down (so a
//!   load balancer stops sending it new requests while it drains).
//!
//! Probes arrive every few seconds from every orchestrator and balancer:
//! one check runs at a time and its answer is reused for [`FRESH_FOR`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::Serving;
use crate::backends::Backend;

/// How long a readiness answer is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// How long one backend may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether this host should be sent requests.
#[derive(Default)]
pub struct Readiness {
    shutting_down: AtomicBool,
    last: tokio::sync::Mutex<Option<(Instant, ReadyReport)>>,
}

/// `/readyz`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyReport {
    pub ready: bool,
    /// Why not, in one line (the first failed check); `None` when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub components: usize,
    pub checks: Vec<BackendCheck>,
}

/// One backend's answer.
#[derive(Debug, Clone, Serialize)]
pub struct BackendCheck {
    /// `postgres` or `redis`.
    pub name: &'static str,
    /// The address, password replaced by `***`.
    pub target: String,
    pub ok: bool,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Readiness {
    /// From now on the host is not ready: it is draining.
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub async fn check(&self, serving: &Serving) -> ReadyReport {
        if self.shutting_down.load(Ordering::Relaxed) {
            return ReadyReport {
                ready: false,
                detail: Some("shutting down: finishing the requests in flight".to_string()),
                components: serving.components.len(),
                checks: Vec::new(),
            };
        }
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return report.clone();
        }
        let report = check_now(serving).await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

async fn check_now(serving: &Serving) -> ReadyReport {
    let components = serving.components.len();
    let backends = match &serving.backends {
        Ok(backends) => backends,
        Err(error) => {
            return ReadyReport {
                ready: false,
                detail: Some(format!("the configuration's backends: {error}")),
                components,
                checks: Vec::new(),
            };
        }
    };
    let checks = futures::future::join_all(backends.iter().map(check_backend)).await;
    let detail = if components == 0 {
        Some("no components are loaded".to_string())
    } else {
        checks.iter().find(|c| !c.ok).map(|failed| {
            format!(
                "{} {}: {}",
                failed.name,
                failed.target,
                failed.cause.as_deref().unwrap_or("failed")
            )
        })
    };
    ReadyReport {
        ready: detail.is_none(),
        detail,
        components,
        checks,
    }
}

async fn check_backend(backend: &Backend) -> BackendCheck {
    let started = Instant::now();
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, backend.reach()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(CHECK_TIMEOUT)
        )),
    };
    BackendCheck {
        name: backend.kind.as_str(),
        target: backend.target.clone(),
        ok: outcome.is_ok(),
        latency_ms: (started.elapsed().as_secs_f64() * 1e5).round() / 100.0,
        cause: outcome.err(),
    }
}
