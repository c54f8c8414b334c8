//! Backends for the tests: a database of their own on the machine's
//! PostgreSQL, a key prefix of their own on its Redis, and private server
//! processes for the tests that stop a backend mid-test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where PostgreSQL's server programs (`initdb`, `pg_ctl`) are: `pg_config
/// --bindir` when it is installed, else the newest `/usr/lib/postgresql/<major>/bin`
/// (Debian keeps them off PATH), else PATH itself. Any PostgreSQL >= 13.
fn pg_bindir() -> &'static std::path::Path {
    static BINDIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINDIR.get_or_init(|| {
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            .filter(|dir| dir.join("initdb").is_file());
        let newest_debian = || {
            std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name().into_string().ok()?;
                    Some((name.parse::<u32>().ok()?, name))
                })
                .filter(|(major, name)| {
                    *major >= 13
                        && std::path::Path::new("/usr/lib/postgresql")
                            .join(name)
                            .join("bin/initdb")
                            .is_file()
                })
                .max()
                .map(|(_, name)| PathBuf::from("/usr/lib/postgresql").join(name).join("bin"))
        };
        from_pg_config
            .or_else(newest_debian)
            // Empty: run the program by name from PATH.
            .unwrap_or_default()
    })
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn psql(port: u16, database: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("running psql");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A database of this test's own on the PostgreSQL at 127.0.0.1:5432,
/// dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    port: u16,
}

impl TestDatabase {
    pub fn create() -> Self {
        Self::create_on(5432)
    }

    pub fn create_on(port: u16) -> Self {
        let name = format!("nexa_t_{}", uuid::Uuid::new_v4().simple());
        psql(port, "postgres", &format!("CREATE DATABASE {name}"));
        Self { name, port }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, self.name
        )
    }

    pub fn sql(&self, sql: &str) -> String {
        psql(self.port, &self.name, sql)
    }

    /// Fails unless the app's schema is in this database: proof that a test
    /// meant for Postgres did not quietly run on the embedded SQLite database.
    pub fn assert_app_schema_here(&self) {
        let tables = self.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('items', 'users')",
        );
        assert_eq!(
            tables, "2",
            "the app did not use Postgres database {}: its tables are missing",
            self.name
        );
    }

    /// Server connections open to this database (other than psql's own).
    pub fn connections(&self) -> usize {
        self.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))
        .parse()
        .unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args([
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A PostgreSQL server of the test's own, which the test may stop and start.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    _temp: tempfile::TempDir,
}

fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command.args([
        "-u",
        "postgres",
        "--",
        &pg_bindir().join(program).display().to_string(),
    ]);
    command
}

impl PrivatePostgres {
    pub fn start_new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(temp.path())
            .status()
            .unwrap();
        let status = as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let server = Self {
            port: free_port(),
            dir,
            _temp: temp,
        };
        server.start();
        server
    }

    pub fn start(&self) {
        let options = format!("-p {} -k /tmp -h 127.0.0.1 -c fsync=off", self.port);
        let status = as_postgres("pg_ctl")
            .args(["-w", "-s", "-D"])
            .arg(&self.dir)
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .arg("start")
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start failed");
    }

    /// Stops the server as a crash would: connections just end.
    pub fn stop(&self) {
        self.stop_with("immediate");
    }

    /// Stops the server in `mode` (`pg_ctl stop -m`): `fast` tells each
    /// session "terminating connection due to administrator command" first,
    /// as an operator's stop does.
    pub fn stop_with(&self, mode: &str) {
        let status = as_postgres("pg_ctl")
            .args(["-w", "-s", "-m", mode, "-D"])
            .arg(&self.dir)
            .arg("stop")
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop failed");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(&self.dir)
            .arg("stop")
            .stderr(Stdio::null())
            .status();
    }
}

/// A Redis server of the test's own, which the test may stop and start.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start_new() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.start();
        redis
    }

    pub fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Clients connected to this server (other than the one asking).
    pub fn clients(&self) -> usize {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "info", "clients"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .map(|n| n - 1)
            .unwrap()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
