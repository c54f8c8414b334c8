//! A second start with the same state dir loads every component from the
//! artifact cache instead of compiling it.

use crate::support::{AppDir, SECRET_RUNTIME_CONFIG, fixture_manifest};

#[tokio::test]
async fn second_start_loads_from_the_artifact_cache() {
    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", SECRET_RUNTIME_CONFIG);
    let args = [
        "--runtime-config-file",
        app.path("rc.toml").to_str().unwrap().to_string().leak(),
    ];

    let first = app.start(&args);
    assert!(cache_counts(&first.log(), 2, 0), "{}", first.log());
    drop(first);

    let second = app.start(&args);
    let log = second.log();
    assert!(cache_counts(&log, 0, 2), "{log}");
    assert!(
        log.contains("component loaded from the artifact cache"),
        "{log}"
    );
    let response = second
        .client()
        .get(second.url("/fixture/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A corrupt artifact is recompiled, not trusted.
    drop(second);
    let cache = app.path(".spin/nexa-artifacts");
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let third = app.start(&args);
    assert!(cache_counts(&third.log(), 2, 0), "{}", third.log());
    let response = third
        .client()
        .get(third.url("/fixture/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Whether the host logged the artifact cache's counts as given.
fn cache_counts(log: &str, compiled: u64, loaded: u64) -> bool {
    crate::support::logged(
        log,
        &[
            ("message", "artifact cache".into()),
            ("compiled", compiled.into()),
            ("loaded_from_cache", loaded.into()),
        ],
    )
}
