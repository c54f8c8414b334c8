//! What the host records about the requests it serves, beside the metrics:
//! traces (OpenTelemetry over OTLP), logs (JSON lines or a human format, also
//! appended to `<state-dir>/logs/nexa.log`) and the components' own output.
//! Everything is recorded by the host; components stay plain spin-sdk.

pub mod component_output;
pub mod instance;
pub mod logs;
pub mod traces;

/// `NEXA_BENCH_NO_OBSERVABILITY=1` bypasses the observability layer (no
/// metrics recorded, no access log, no capability-call
/// hook): the baseline of `host/benches/observability.sh`, nothing else.
pub fn bypassed() -> bool {
    static BYPASSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BYPASSED.get_or_init(|| std::env::var_os("NEXA_BENCH_NO_OBSERVABILITY").is_some())
}
