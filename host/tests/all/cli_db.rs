//! `nexa db migrate` and `nexa db seed` against a Postgres database of the
//! test's own and an SQLite file: the schema reaches the latest version once,
//! the seed runs once, the admin's password comes from the app (or
//! `--admin-password-env`) and works for a real login; mistakes exit 1 with
//! the cause.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use nexa_api::repository::schema;
use serde_json::Value;

use crate::services::TestDatabase;
use crate::support::{ADMIN_PASSWORD, AppDir, Host, rc_args, repo_app, unique};

/// Runs `nexa db <args>` with `env` (from `dir`, so that no spin.toml is
/// found by accident).
fn nexa_db(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexa"));
    command
        .arg("db")
        .args(args)
        .current_dir(dir.path())
        .env_remove("NEXA_RUNTIME_CONFIG_FILE")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// The JSON report of a command that must succeed.
fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "nexa db failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

/// The stderr of a command that must fail with status 1.
fn failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Logs in as `admin`; returns the status.
async fn admin_login(host: &Host, password: &str) -> u16 {
    host.client()
        .post(host.url("/auth/token"))
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrates_once_seeds_once_and_the_admin_logs_in() {
    let db = TestDatabase::create();
    let url = db.url();
    let latest = schema::latest_version();

    let first = report(&nexa_db(&["migrate", "--database", &url, "--json"], &[]));
    assert_eq!(first["dialect"], "postgres");
    assert_eq!(first["database"], url.as_str());
    assert_eq!(first["version_before"], 0);
    assert_eq!(first["version_after"], latest);
    assert_eq!(
        first["applied"],
        serde_json::json!((1..=latest).collect::<Vec<_>>())
    );
    assert_eq!(
        db.sql("SELECT max(version) FROM schema_migrations"),
        latest.to_string()
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'items', 'sessions', 'refresh_tokens', 'login_failures')"),
        "5"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM users"),
        "0",
        "migrate does not seed"
    );

    let again = nexa_db(&["migrate", "--database", &url], &[]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        format!("{url}: schema at version {latest} (the latest); no migration to apply")
    );

    let password = unique("pw");
    let env = [("NEXA_TEST_ADMIN_PASSWORD", password.as_str())];
    let seed = [
        "seed",
        "--database",
        &url,
        "--admin-password-env",
        "NEXA_TEST_ADMIN_PASSWORD",
        "--json",
    ];
    let seeded = report(&nexa_db(&seed, &env));
    assert_eq!(
        (
            &seeded["schema_version"],
            &seeded["seeded"],
            &seeded["admin_password_set"]
        ),
        (&latest.into(), &true.into(), &true.into())
    );
    assert_eq!(
        db.sql(
            "SELECT role || ' ' || left(hashed_password, 4) FROM users WHERE username = 'admin'"
        ),
        "admin $2b$"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM items"),
        schema::SEED_ITEMS.len().to_string()
    );
    let twice = report(&nexa_db(&seed, &env));
    assert_eq!(
        (&twice["seeded"], &twice["admin_password_set"]),
        (&false.into(), &false.into())
    );

    // A real host on that database: the admin logs in with the seeded
    // password, not with the development one the auth component would have
    // given an admin without a password.
    let app = repo_app("");
    let rc = rc_args(&app);
    let host = app.start_with_env(
        &rc.each_ref().map(String::as_str),
        &[("SPIN_VARIABLE_DATABASE_URL", &url)],
    );
    assert_eq!(admin_login(&host, &password).await, 200, "{}", host.log());
    assert_eq!(admin_login(&host, ADMIN_PASSWORD).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apps_own_sqlite_database_and_password_are_the_default() {
    // The repository's app: database_url is empty, so the components use
    // the embedded SQLite database in the state dir; admin_password comes
    // from its runtime config (with bcrypt_cost 4).
    let app = repo_app("");
    let rc = rc_args(&app);
    let manifest = app.path("spin.toml");
    let mut args = vec![
        "-f",
        manifest.to_str().unwrap(),
        rc[0].as_str(),
        rc[1].as_str(),
    ];
    args.push("--json");
    let with = |command: &str| {
        let mut all = vec![command];
        all.extend_from_slice(&args);
        report(&nexa_db(&all, &[]))
    };
    let file = app.path(".spin/sqlite_db.db");

    let before_migrating = nexa_db(
        &[
            "seed",
            "-f",
            manifest.to_str().unwrap(),
            rc[0].as_str(),
            rc[1].as_str(),
        ],
        &[],
    );
    let stderr = failure(&before_migrating);
    assert!(
        stderr.contains("version 0") && stderr.contains("nexa db migrate"),
        "{stderr}"
    );

    let migrated = with("migrate");
    assert_eq!(migrated["dialect"], "sqlite");
    assert_eq!(migrated["database"], format!("sqlite:{}", file.display()));
    assert_eq!(migrated["version_after"], schema::latest_version());
    assert_eq!(with("migrate")["applied"], serde_json::json!([]));
    assert_eq!(sqlite_value(&file, "SELECT count(*) FROM users"), "0");

    let seeded = with("seed");
    assert_eq!(
        (&seeded["seeded"], &seeded["admin_password_set"]),
        (&true.into(), &true.into())
    );
    assert!(
        sqlite_value(
            &file,
            "SELECT hashed_password FROM users WHERE username = 'admin'"
        )
        .starts_with("$2b$04$"),
        "hashed at the app's bcrypt_cost"
    );
    let again = with("seed");
    assert_eq!(
        (&again["seeded"], &again["admin_password_set"]),
        (&false.into(), &false.into())
    );

    let host = app.start(&rc.each_ref().map(String::as_str));
    assert_eq!(
        admin_login(&host, ADMIN_PASSWORD).await,
        200,
        "{}",
        host.log()
    );
    assert_eq!(admin_login(&host, "wrong").await, 401);
}

fn sqlite_value(file: &Path, sql: &str) -> String {
    let connection = rusqlite::Connection::open(file).unwrap();
    connection
        .query_row(sql, [], |row| {
            Ok(match row.get_ref(0)? {
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                other => format!("{other:?}"),
            })
        })
        .unwrap()
}

#[test]
fn mistakes_exit_1_with_the_cause() {
    let not_a_database = failure(&nexa_db(
        &["migrate", "--database", "mysql://localhost/x"],
        &[],
    ));
    assert!(not_a_database.contains("postgres://"), "{not_a_database}");

    let unreachable = failure(&nexa_db(
        &[
            "migrate",
            "--database",
            "postgres://postgres:hunter2@127.0.0.1:1/x",
        ],
        &[],
    ));
    assert!(
        unreachable.contains("cannot open the database postgres://postgres:***@127.0.0.1:1/x"),
        "{unreachable}"
    );
    assert!(
        !unreachable.contains("hunter2"),
        "the password is never shown: {unreachable}"
    );

    let no_app = failure(&nexa_db(&["migrate"], &[]));
    assert!(
        no_app.contains("spin.toml") && no_app.contains("--database"),
        "{no_app}"
    );

    // Seeding with --database and no password source: the seed runs, and
    // the command says the admin still has no password and how to give one.
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("db.sqlite").display());
    report(&nexa_db(&["migrate", "--database", &sqlite, "--json"], &[]));
    let no_password = failure(&nexa_db(&["seed", "--database", &sqlite], &[]));
    assert!(
        no_password.contains("seeded, but the admin account has no password")
            && no_password.contains("--admin-password-env"),
        "{no_password}"
    );
    let unset = failure(&nexa_db(
        &[
            "seed",
            "--database",
            &sqlite,
            "--admin-password-env",
            "NEXA_TEST_UNSET_VARIABLE",
        ],
        &[],
    ));
    assert!(
        unset.contains("NEXA_TEST_UNSET_VARIABLE is not set"),
        "{unset}"
    );

    // Components that disagree on their database: --database must choose.
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "two-databases"
[variables]
database_url = { default = "" }
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "a.wasm"
[component.a.variables]
database_url = "{{ database_url }}"
[component.b]
source = "b.wasm"
[component.b.variables]
database_url = "postgres://elsewhere/b"
"#,
    );
    let manifest = app.path("spin.toml");
    let ambiguous = failure(&nexa_db(
        &["migrate", "-f", manifest.to_str().unwrap()],
        &[],
    ));
    assert!(
        ambiguous.contains("differs") && ambiguous.contains("--database"),
        "{ambiguous}"
    );

    let usage = nexa_db(&["migrate", "--no-such-flag"], &[]);
    assert_eq!(usage.status.code(), Some(2));
}
