//! The per-request path in process, no socket: the edge (request id, slots,
//! routing), an instance of the fixture component (new, or reused), the
//! guest's handler and its response body, for `GET /fixture/ok`.
//!
//! `cargo bench --bench request_path` (builds the fixture component first).
//! Two cases side by side: instance reuse on (the default: an instance
//! serves up to 128 requests) and off (`max_instance_reuse_count = 1`: every
//! request instantiates).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use nexa_host::app::{App, AppOptions};
use nexa_host::server::{ServerState, router};
use tower::ServiceExt;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repository")
        .to_path_buf()
}

/// Builds the fixture component as the tests do, and returns its path.
fn fixture() -> PathBuf {
    let status = Command::new("sh")
        .arg(repo_root().join("components/build.sh"))
        .arg("fixture")
        .status()
        .expect("running components/build.sh");
    assert!(status.success(), "building the fixture component failed");
    repo_root().join("components/fixture/fixture.wasm")
}

/// An app serving the fixture on `/fixture/...` with `max_instance_reuse_count`.
fn app_dir(fixture: &Path, reuse: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\n\
         [variables]\ngreeting = {{ default = \"hello\" }}\nsecret_word = {{ default = \"x\" }}\n\
         [[trigger.http]]\nroute = \"/fixture/...\"\ncomponent = \"fixture\"\n\
         [component.fixture]\nsource = {:?}\n",
        fixture.display().to_string()
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).expect("writing spin.toml");
    std::fs::write(
        dir.path().join("nexa.toml"),
        format!("max_instance_reuse_count = {reuse}\nadmin_listen = \"off\"\n[rate_limit]\nenabled = false\n"),
    )
    .expect("writing nexa.toml");
    dir
}

fn request_path(c: &mut Criterion) {
    let fixture = fixture();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut group = c.benchmark_group("GET /fixture/ok in process");
    for (name, reuse) in [("instance reuse on", 128), ("instance reuse off", 1)] {
        let dir = app_dir(&fixture, reuse);
        let router = runtime.block_on(async {
            let app = App::load(&AppOptions {
                manifest: dir.path().join("spin.toml"),
                runtime_config: None,
                host_config: None,
                state_dir: Some(dir.path().join("state")),
            })
            .await
            .expect("loading the bench app");
            router(ServerState::new(app).expect("the server state"))
        });
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let router = router.clone();
                async move {
                    let mut request = axum::http::Request::get("/fixture/ok")
                        .header("host", "localhost")
                        .body(Body::empty())
                        .expect("a request");
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let response = router.oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), 200);
                    let body = response.into_body().collect().await.expect("the body");
                    assert_eq!(body.to_bytes().as_ref(), b"ok");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
