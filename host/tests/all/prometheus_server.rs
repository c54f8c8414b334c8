//! A Prometheus of a test's own (Debian's `prometheus`, on a free port, its
//! data in a temporary directory) loading the repository's rules and
//! scraping one host's admin listener.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::free_port;
use crate::support::repo_root;

/// A Prometheus process; killed when dropped.
pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Whether the `prometheus` binary is here (in CI it must be).
    pub fn installed() -> bool {
        crate::support::installed("prometheus", "--version", "apt-get install prometheus")
    }

    /// Starts Prometheus with the committed config, its target replaced by
    /// `admin` (the host's admin address) and its rules read from the repository.
    pub fn start(admin: &str) -> Option<Self> {
        Self::start_with(admin, None)
    }

    /// As [`Prometheus::start`], scraping and evaluating the rules every
    /// second (the committed 5 s would make a test wait): data is there a
    /// second or two after a request. Returns once Prometheus is ready.
    pub async fn start_fast(admin: &str) -> Option<Self> {
        let prometheus = Self::start_with(admin, Some("1s"))?;
        prometheus.wait_ready().await;
        Some(prometheus)
    }

    fn start_with(admin: &str, interval: Option<&str>) -> Option<Self> {
        if !Self::installed() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let observability = repo_root().join("observability/prometheus");
        let mut config = std::fs::read_to_string(observability.join("prometheus.yml"))
            .unwrap()
            .replace("127.0.0.1:9464", admin)
            .replace(
                "- rules/*.yml",
                &format!("- {}/rules/*.yml", observability.display()),
            );
        if let Some(interval) = interval {
            for key in ["scrape_interval", "scrape_timeout", "evaluation_interval"] {
                let line = config
                    .lines()
                    .find(|line| line.trim_start().starts_with(&format!("{key}:")))
                    .unwrap_or_else(|| panic!("prometheus.yml has no {key}"))
                    .to_string();
                config = config.replace(&line, &format!("  {key}: {interval}"));
            }
        }
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

    /// Waits (up to 20 s) until `/-/ready` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::Client::new();
        loop {
            let ready = client.get(format!("{}/-/ready", self.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(Instant::now() < deadline, "prometheus did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query's result vector.
    pub async fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().unwrap().clone()
    }

    /// Waits (up to 30 s) until `promql` has one sample whose value is
    /// `expected`.
    pub async fn wait_for_value(&self, promql: &str, expected: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let result = self.query(promql).await;
            let value = result
                .first()
                .and_then(|sample| sample["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if value == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} is {value:?}, not {expected}, after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
