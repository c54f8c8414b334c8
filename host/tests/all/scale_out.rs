//! Three `nexa up` replicas sharing one Postgres database and one Redis,
//! behind a real HAProxy that retries only requests that never reached a
//! replica (connection failures): the shared rate limit holds across them,
//! a write through one is never read stale through another, sessions move
//! between them, and killing one under a write load loses no acknowledged
//! write.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::services::{PrivateRedis, TestDatabase, free_port};
use crate::support::{ADMIN_PASSWORD, AppDir, Host, get_json, rc_args, repo_app};

/// Registrations per minute, shared by all replicas through Redis.
const REGISTER_QUOTA: usize = 6;
/// Clients writing at once while a replica is killed.
const WRITERS: usize = 8;

struct Replica {
    _app: AppDir,
    host: Host,
}

fn start_replica(db: &TestDatabase, redis: &PrivateRedis) -> Replica {
    let app = repo_app(&format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
        redis.url()
    ));
    // Only registrations are limited tightly; the write load must not be.
    app.write(
        "nexa.toml",
        &format!(
            "[rate_limit]\nenabled = true\nredis_url = \"{}\"\n\
             [rate_limit.register]\nper_minute = {REGISTER_QUOTA}\n\
             [rate_limit.login]\nper_minute = 1000\n\
             [rate_limit.write]\nper_minute = 100000\n\
             [rate_limit.read]\nper_minute = 100000\n",
            redis.url()
        ),
    );
    let rc = rc_args(&app);
    let rc = rc.each_ref().map(String::as_str);
    let host = app.start_with_env(&rc, &[("SPIN_VARIABLE_DATABASE_URL", &db.url())]);
    assert!(!host.address().is_empty(), "{}", host.log());
    Replica { _app: app, host }
}

/// HAProxy in the foreground: `/` balances over every replica, and a
/// second frontend over the first replica alone (for the throughput figure).
struct Balancer {
    child: Child,
    port: u16,
    single_port: u16,
    _dir: tempfile::TempDir,
}

impl Balancer {
    fn start(replicas: &[Replica]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, single_port) = (free_port(), free_port());
        let server = |(index, replica): (usize, &Replica)| {
            let admin = replica.host.admin_url("");
            let admin_port = admin.trim_end_matches('/').rsplit(':').next().unwrap();
            format!(
                "  server r{index} {} check port {admin_port}\n",
                replica.host.address()
            )
        };
        let all: String = replicas.iter().enumerate().map(server).collect();
        let first = server((0, &replicas[0]));
        // Retries: only on connection failure (the default), to another
        // replica (`redispatch`); a request that reached a replica is never
        // sent twice. Health: the replicas' /readyz. `httpclose`: each
        // request on its own connections, so that a request lost with a
        // killed replica is answered (502) and logged against that replica
        // rather than ending a kept-alive client connection unlogged.
        let config = format!(
            "global\n  maxconn 2000\n  log stderr format raw local0\n\
             defaults\n  mode http\n  log global\n  option httplog\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
             \x20 retries 3\n  option redispatch 1\n  option httpclose\n\
             \x20 option httpchk GET /readyz\n  http-check expect status 200\n\
             \x20 default-server inter 300ms fall 1 rise 2\n\
             frontend all\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             frontend single\n  bind 127.0.0.1:{single_port}\n  default_backend first\n\
             backend replicas\n  balance roundrobin\n{all}\
             backend first\n{first}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
            .spawn()
            .expect("starting haproxy (apt-get install haproxy)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            single_port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// HAProxy's log: one line per request, with the replica it went to,
    /// the status and how the session ended.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("haproxy.log")).unwrap()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `every` request through the balancer succeeds (its health
/// checks have seen every replica ready).
async fn wait_until_balanced(balancer: &Balancer, replicas: usize) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ok = 0;
        for _ in 0..replicas * 2 {
            if let Ok(response) = client.get(balancer.url("/health")).send().await
                && response.status() == 200
            {
                ok += 1;
            }
        }
        if ok == replicas * 2 {
            // Every replica has passed `rise` checks once all answered.
            tokio::time::sleep(Duration::from_millis(700)).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the balancer never saw the replicas"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(url: String) -> Value {
    let response = reqwest::Client::new()
        .post(url)
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_haproxy_share_limits_cache_and_sessions_and_survive_a_kill() {
    let db = TestDatabase::create();
    let redis = PrivateRedis::start_new();
    let mut replicas: Vec<Replica> = (0..3).map(|_| start_replica(&db, &redis)).collect();
    let balancer = Balancer::start(&replicas);
    wait_until_balanced(&balancer, 3).await;
    let client = reqwest::Client::new();

    // Sessions: log in on one replica, refresh on another, use it on a third.
    let tokens = login(replicas[0].host.url("/auth/token")).await;
    let refreshed = client
        .post(replicas[1].host.url("/auth/refresh"))
        .json(&json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap().to_string();
    let me = client
        .get(replicas[2].host.url("/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // The rotated-out refresh token is spent everywhere.
    let reused = client
        .post(replicas[2].host.url("/auth/refresh"))
        .json(&json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 401);
    // ... and its reuse ended the session on every replica.
    let revoked = client
        .get(replicas[0].host.url("/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
    let tokens = login(balancer.url("/auth/token")).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();

    // The cache: a write through one replica is read fresh through the others.
    for round in 0..6 {
        let writer = &replicas[round % 3].host;
        let price = 20.0 + round as f64 + 0.25;
        let patched = client
            .patch(writer.url("/items/2"))
            .bearer_auth(&access)
            .json(&json!({ "price": price }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200, "round {round}");
        for reader in [
            &replicas[(round + 1) % 3].host,
            &replicas[(round + 2) % 3].host,
        ] {
            // Twice: the second read is the cache's, which must be fresh too.
            for _ in 0..2 {
                let (status, item) = get_json(reader, "/items/2").await;
                assert_eq!(status, 200, "round {round}: {item}");
                assert_eq!(item["price"].as_f64(), Some(price), "round {round}");
            }
        }
    }

    // The shared rate limit: registrations through the balancer (round
    // robin over three replicas) are allowed once per quota, not three times.
    let mut allowed = 0;
    for n in 0..REGISTER_QUOTA * 3 {
        let response = client
            .post(balancer.url("/users"))
            .json(&json!({
                "username": format!("scale{n}"),
                "email": format!("scale{n}@example.com"),
                "password": "a long enough password"
            }))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            201 => allowed += 1,
            429 => {}
            other => panic!(
                "registration {n}: {other} {}",
                response.text().await.unwrap()
            ),
        }
    }
    println!(
        "three replicas allowed {allowed} registrations against one quota of {REGISTER_QUOTA}"
    );
    assert!(
        (REGISTER_QUOTA - 1..=REGISTER_QUOTA + 1).contains(&allowed),
        "{allowed}"
    );

    // Throughput through the balancer: one replica, then all three.
    let bench = Command::new(env!("CARGO_BIN_EXE_nexa"))
        .args([
            "bench",
            &format!("http://127.0.0.1:{}/items/2", balancer.single_port),
        ])
        .args(["--compare", &balancer.url("/items/2")])
        .args(["--duration", "2s", "--warmup", "500ms", "--rounds", "2"])
        .args(["--connections", "16", "--json"])
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let figures: Value = serde_json::from_slice(&bench.stdout).unwrap();
    println!(
        "GET /items/2 through haproxy: 1 replica {:.0} req/s, 3 replicas {:.0} req/s (ratio {:.2})",
        figures["a"]["median"]["throughput"].as_f64().unwrap(),
        figures["b"]["median"]["throughput"].as_f64().unwrap(),
        figures["ratio"]["throughput"].as_f64().unwrap(),
    );

    // Kill one replica (SIGKILL: no graceful drain) under a write load.
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (stop, in_flight) = (stop.clone(), in_flight.clone());
            let (url, access) = (balancer.url("/items"), access.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let (mut acknowledged, mut failed) = (Vec::new(), Vec::new());
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let name = format!("w{writer}-{n}");
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let sent = client
                        .post(&url)
                        .bearer_auth(&access)
                        .json(&json!({ "name": name, "price": 1 }))
                        .send()
                        .await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    match sent {
                        Ok(response) if response.status() == 201 => {
                            // Acknowledged only once the whole answer arrived:
                            // a replica killed mid-body leaves a bare 201.
                            match response.json::<Value>().await {
                                Ok(item) => acknowledged.push(item["id"].as_i64().unwrap()),
                                Err(error) => {
                                    failed.push(format!("{name}: 201 cut short: {error}"))
                                }
                            }
                        }
                        Ok(response) => failed.push(format!("{name}: {}", response.status())),
                        Err(error) => failed.push(format!("{name}: {error:?}")),
                    }
                }
                (acknowledged, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at_kill = in_flight.load(Ordering::SeqCst);
    replicas[1].host.child.kill().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acknowledged, mut failed) = (Vec::new(), Vec::new());
    for writer in writers {
        let (ok, bad) = writer.await.unwrap();
        acknowledged.extend(ok);
        failed.extend(bad);
    }
    println!(
        "killed one of three replicas under {WRITERS} writers: {} writes acknowledged, {} failed (client requests in flight at the kill: {at_kill}): {failed:?}",
        acknowledged.len(),
        failed.len()
    );
    // Only requests the killed replica had taken fail: each is a 502 that
    // HAProxy logged against that replica, the server side having ended the
    // session (`S`: in flight at the kill, or accepted into its backlog while
    // it died); every other request was answered or retried elsewhere.
    let log = balancer.log();
    let lost_with_the_replica: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"POST /items ") && !line.contains(" 201 "))
        .collect();
    assert!(
        lost_with_the_replica
            .iter()
            .all(|line| line.contains(" replicas/r1 ")
                && line.contains(" 502 ")
                && line.contains(" S")),
        "{lost_with_the_replica:#?}"
    );
    assert_eq!(
        failed.len(),
        lost_with_the_replica.len(),
        "{failed:?}\n{lost_with_the_replica:#?}"
    );
    assert!(
        failed.iter().all(|f| f.ends_with(": 502 Bad Gateway")),
        "{failed:?}"
    );
    assert!(failed.len() <= 2 * WRITERS, "{failed:?}");
    assert!(
        acknowledged.len() > 50,
        "too little load: {}",
        acknowledged.len()
    );
    // Every acknowledged write is in the table.
    let ids = acknowledged
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let stored: usize = db
        .sql(&format!("SELECT count(*) FROM items WHERE id IN ({ids})"))
        .parse()
        .unwrap();
    assert_eq!(stored, acknowledged.len(), "acknowledged writes lost");
    // The two replicas left still serve through the balancer.
    let health = client.get(balancer.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    db.assert_app_schema_here();
}
