//! The committed Prometheus configuration, recording rules and Grafana
//! dashboards against a real Prometheus (Debian's `prometheus`, on a free
//! port) scraping a real `nexa up` on Postgres: after traffic to health, auth
//! and items (errors included), every recording rule and every dashboard
//! query must return data (`observability/check_queries.py`).

use std::process::Command;
use std::time::Duration;

use crate::prometheus_server::Prometheus;
use crate::support::{ADMIN_PASSWORD, repo_app, repo_root, start_on};

#[tokio::test]
async fn every_rule_and_dashboard_query_has_data_from_a_real_host() {
    if !Prometheus::installed() {
        println!("skipped: prometheus is not installed");
        return;
    }
    let app = repo_app("");
    let (_backend, host) = start_on(&app, true);
    let admin = host.admin_url("").trim_start_matches("http://").to_string();
    let Some(prometheus) = Prometheus::start(&admin) else {
        println!("skipped: prometheus is not installed");
        return;
    };
    let client = host.client();
    // Traffic to every SLO's component, a login, writes, and errors.
    let login = client
        .post(host.url("/auth/token"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = client
        .post(host.url("/auth/token"))
        .form(&[("username", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for round in 0..30 {
        for path in [
            "/health",
            "/items/",
            "/items/1",
            "/items/999999",
            "/missing",
        ] {
            client.get(host.url(path)).send().await.unwrap();
        }
        if round % 10 == 0 {
            let created = client
                .post(host.url("/items/"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "name": format!("probe {round}"), "price": 1.5 }))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let url = prometheus.url.clone();
    let check = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(repo_root().join("observability/check_queries.py"))
            .arg(url)
            .args(["--wait", "90"])
            // No component of the app uses the Redis capability.
            .args(["--allow-empty", "redis_connection_up"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    println!("{stdout}");
    drop(prometheus);
    assert!(
        check.status.success(),
        "some queries failed or had no data:\n{stdout}\n{stderr}\nhost log:\n{}",
        host.log()
    );
}
