//! The committed Prometheus configuration, recording rules and Grafana
//! dashboards against a real Prometheus (Debian's `prometheus`, on a free
//! port) scraping a real `nexa up` on Postgres: after traffic to health, auth
//! and items (errors included), every recording rule and every dashboard
//! query must return data (`observability/check_queries.py`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::services::free_port;
use crate::support::{ADMIN_PASSWORD, repo_app, repo_root, start_on};

/// A Prometheus process of the test's own; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with the committed config, its target replaced by
    /// `admin` (the host's admin address) and its rules read from the repository.
    /// Whether the `prometheus` binary is here (in CI it must be).
    fn installed() -> bool {
        let installed = Command::new("prometheus").arg("--version").output().is_ok();
        assert!(
            installed || std::env::var("CI").as_deref() != Ok("true"),
            "prometheus is missing: .ci/run installs it (apt-get install prometheus)"
        );
        installed
    }

    fn start(admin: &str) -> Option<Self> {
        if !Self::installed() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let observability = repo_root().join("observability/prometheus");
        let config = std::fs::read_to_string(observability.join("prometheus.yml"))
            .unwrap()
            .replace("127.0.0.1:9464", admin)
            .replace(
                "- rules/*.yml",
                &format!("- {}/rules/*.yml", observability.display()),
            );
        assert!(
            config.contains(admin),
            "the target was not replaced:\n{config}"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

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
