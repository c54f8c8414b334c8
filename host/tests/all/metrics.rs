//! `/metrics` on the admin listener: what a real host records for real
//! requests, labels bounded by the app (route templates, component ids), and
//! never on the public port.

use std::collections::BTreeSet;

use crate::support::{AppDir, Host, fixture_host, fixture_manifest, rc_args, repo_app};

pub async fn scrape(host: &Host) -> String {
    let response = reqwest::get(host.admin_url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels
/// as exposed, labels in alphabetical order).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn requests_traps_and_capability_calls_are_recorded() {
    let (_app, host) =
        fixture_host("[rate_limit]\nenabled = true\n[rate_limit.read]\nper_minute = 3\n");
    let client = host.client();
    // The fourth read is over the quota of 3.
    for (path, status) in [
        ("/fixture/kv/default/absent", 404),
        ("/fixture/trap", 500),
        ("/fixture/ok", 200),
        ("/fixture/ok", 429),
    ] {
        let response = client.get(host.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }

    let text = scrape(&host).await;
    for (series, at_least) in [
        (
            r#"http_server_requests_total{component="fixture",method="GET",route="/fixture/...",status_class="2xx"}"#,
            1.0,
        ),
        (
            r#"http_server_requests_total{component="fixture",method="GET",route="/fixture/...",status_class="5xx"}"#,
            1.0,
        ),
        (
            r#"http_server_requests_total{component="fixture",method="GET",route="/fixture/...",status_class="4xx"}"#,
            2.0,
        ),
        (
            r#"component_traps_total{component="fixture",kind="trap"}"#,
            1.0,
        ),
        (r#"rate_limited_total{class="read"}"#, 1.0),
        (r#"key_value_lookups_total{result="miss"}"#, 1.0),
        (
            r#"capability_calls_total{capability="key-value",op="[method]store.get",result="ok"}"#,
            1.0,
        ),
        (
            r#"component_instantiations_total{component="fixture"}"#,
            1.0,
        ),
        (
            r#"http_server_request_duration_seconds_count{component="fixture",method="GET",route="/fixture/..."}"#,
            4.0,
        ),
        ("artifact_cache_misses_total", 1.0),
        ("http_server_active_requests", 0.0),
    ] {
        let value = sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(value >= at_least, "{series} = {value}");
    }
    assert!(
        text.contains(r#"le="0.1""#) && text.contains(r#"le="0.25""#),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.contains("nexa_build_info{version="), "{text}");
}

#[tokio::test]
async fn metrics_are_not_on_the_public_port_and_can_be_turned_off() {
    let (_app, host) = fixture_host("");
    let public = host
        .client()
        .get(host.url("/metrics"))
        .send()
        .await
        .unwrap();
    let body = public.text().await.unwrap();
    assert!(!body.contains("http_server_requests_total"), "{body}");

    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", crate::support::SECRET_RUNTIME_CONFIG);
    app.write("nexa.toml", "admin_listen = \"off\"\n");
    let host = app.start_with_env(
        &[
            "--runtime-config-file",
            app.path("rc.toml").to_str().unwrap(),
        ],
        // The flag's environment variable would override the file.
        &[("NEXA_ADMIN_LISTEN", "off")],
    );
    assert_eq!(
        host.client()
            .get(host.url("/fixture/ok"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(host.log().contains("admin listener off"), "{}", host.log());
}

#[tokio::test]
async fn an_admin_address_in_use_stops_start_up_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let app = AppDir::new(&fixture_manifest(""));
    app.write("rc.toml", crate::support::SECRET_RUNTIME_CONFIG);
    let stderr = app.start_failure(&[
        "--runtime-config-file",
        app.path("rc.toml").to_str().unwrap(),
        "--admin-listen",
        &address,
    ]);
    assert!(stderr.contains("admin listener"), "{stderr}");
    assert!(stderr.contains(&address), "{stderr}");
}

/// The names and label sets of every `http_server_*` series.
fn request_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with("http_server_"))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series.to_string()))
        .collect()
}

#[tokio::test]
async fn ten_thousand_item_ids_add_no_series() {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    let client = host.client();
    let get_items = |ids: std::ops::Range<u32>| {
        let client = client.clone();
        let host_url = host.url("");
        async move {
            let mut statuses = BTreeSet::new();
            for id in ids {
                let response = client
                    .get(format!("{host_url}/items/{id}"))
                    .send()
                    .await
                    .unwrap();
                statuses.insert(response.status().as_u16());
            }
            statuses
        }
    };
    // Warm-up: a found item and missing ones, so every status class the
    // run will see exists already.
    let warm = get_items(1..200).await;
    assert!(warm.contains(&200) && warm.contains(&404), "{warm:?}");
    let before = request_series(&scrape(&host).await);

    let started = std::time::Instant::now();
    let runs = (0..8).map(|worker| get_items(1_000 + worker * 1_250..1_000 + (worker + 1) * 1_250));
    let statuses: BTreeSet<u16> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    println!("10,000 distinct item ids in {:?}", started.elapsed());
    assert_eq!(statuses, BTreeSet::from([404]));
    let text = scrape(&host).await;
    let after = request_series(&text);
    assert_eq!(before, after, "new series: {:?}", after.difference(&before));
    let series = r#"http_server_requests_total{component="items",method="GET",route="/items/...",status_class="4xx"}"#;
    assert!(sample(&text, series).unwrap() >= 10_000.0, "{text}");
}

/// One request at a time, back to back, reuses one instance, also after a
/// streamed body (the instance goes back to the pool once its guest is
/// done); idle instances are dropped after `idle_instance_timeout_ms`.
#[tokio::test]
async fn instances_are_reused_after_their_bodies_and_dropped_when_idle() {
    let (_app, host) = fixture_host("idle_instance_timeout_ms = 300\n");
    let client = host.client();
    for i in 0..40 {
        let path = if i % 8 == 0 {
            "/fixture/big/1"
        } else {
            "/fixture/ok"
        };
        let response = client.get(host.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().await.unwrap();
        if path == "/fixture/big/1" {
            assert_eq!(body.len(), 1 << 20);
        }
    }
    let text = scrape(&host).await;
    let instantiations = sample(
        &text,
        r#"component_instantiations_total{component="fixture"}"#,
    )
    .unwrap_or_else(|| panic!("{text}"));
    let reuses = sample(
        &text,
        r#"component_instance_reuses_total{component="fixture"}"#,
    )
    .unwrap_or_else(|| panic!("{text}"));
    // The start-up probe makes one; the 40 requests need one more, or two
    // when a request arrives before the previous guest has quite finished.
    assert!(instantiations <= 4.0, "{instantiations} instantiations");
    assert!(reuses >= 36.0, "{reuses} reuses");
    let live = r#"component_live_instances{component="fixture"}"#;
    assert!(sample(&text, live).unwrap() >= 1.0, "{text}");

    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let text = scrape(&host).await;
    assert_eq!(
        sample(&text, live),
        Some(0.0),
        "idle instances dropped: {text}"
    );
}

/// Overlapping requests: with the default, each has an instance of its own
/// (a pooled instance serves one request at a time); with
/// `max_instance_concurrent_reuse_count = 4`, instances serve several at
/// once (wasmtime-wasi-http's handler), so fewer are made.
#[tokio::test]
async fn concurrent_reuse_above_one_shares_instances() {
    async fn instantiations_for_overlapping_sleeps(nexa_toml: &str) -> f64 {
        let (_app, host) = fixture_host(nexa_toml);
        let mut sleeps = Vec::new();
        for _ in 0..8 {
            let request = host.client().get(host.url("/fixture/sleep/600"));
            sleeps.push(tokio::spawn(async move {
                request.send().await.unwrap().status().as_u16()
            }));
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        for sleep in sleeps {
            assert_eq!(sleep.await.unwrap(), 200, "{nexa_toml}");
        }
        let text = scrape(&host).await;
        sample(
            &text,
            r#"component_instantiations_total{component="fixture"}"#,
        )
        .unwrap_or_else(|| panic!("{text}"))
    }
    // Eight requests in flight at once: eight instances (the start-up
    // probe's, pooled, is one of them).
    let one_at_a_time = instantiations_for_overlapping_sleeps("").await;
    assert!(one_at_a_time >= 8.0, "{one_at_a_time} instantiations");
    let shared =
        instantiations_for_overlapping_sleeps("max_instance_concurrent_reuse_count = 4\n").await;
    assert!(shared <= 5.0, "{shared} instantiations");
}
