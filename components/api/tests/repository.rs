//! The repository against the real databases, through the native adapters
//! of the `Database` trait (`storage::native`; the components use spin-sdk's):
//! an SQLite file in a temporary directory, and a database of the test's own
//! on the PostgreSQL at 127.0.0.1:5432, dropped afterwards.

use nexa_api::items::NewItem;
use nexa_api::price::Price;
use nexa_api::repository::{self, items, schema};
use nexa_api::storage::native::{NativeDatabase, PostgresDatabase, SqliteDatabase};
use nexa_api::storage::{Database, DbError, Value};
use nexa_api::validation::{ItemFields, Order, Page};

const POSTGRES_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of the test's own, dropped at the end.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    async fn server() -> PostgresDatabase {
        PostgresDatabase::connect(&format!("{POSTGRES_SERVER}/postgres?sslmode=disable"))
            .await
            .unwrap()
    }

    async fn create() -> Self {
        let name = format!("nexa_repo_{}", uuid::Uuid::new_v4().simple());
        Self::server()
            .await
            .execute(&format!("CREATE DATABASE {name}"), &[])
            .await
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        format!("{POSTGRES_SERVER}/{}?sslmode=disable", self.name)
    }

    async fn connect(&self) -> PostgresDatabase {
        PostgresDatabase::connect(&self.url()).await.unwrap()
    }

    async fn drop_database(self) {
        Self::server()
            .await
            .execute(
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                &[],
            )
            .await
            .unwrap();
    }
}

fn sqlite_file(dir: &std::path::Path) -> SqliteDatabase {
    SqliteDatabase::open(&dir.join("db.sqlite")).unwrap()
}

// ---- the tests, run on both backends ---------------------------------------

/// Runs each named `async fn(&impl Database)` as two tests, `<name>::sqlite`
/// (a file in a temporary directory) and `<name>::postgres` (a database of
/// its own, dropped afterwards).
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test]
                async fn sqlite() {
                    let dir = tempfile_dir();
                    super::$name(&sqlite_file(&dir)).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let database = PgDatabase::create().await;
                    super::$name(&database.connect().await).await;
                    database.drop_database().await;
                }
            }
        )*
    };
}

fn hash() -> Result<String, DbError> {
    Ok("$2b$04$fixedfixedfixedfixedfuXz0D7mJ4Z1vQ1c1sD1H0eYlM5cY0bK6".to_string())
}

async fn first_use_migrates_and_seeds_once<D: Database>(db: &D) {
    let report = schema::migrate(db).await.unwrap();
    assert_eq!(
        report.applied,
        (1..=schema::latest_version()).collect::<Vec<_>>()
    );
    assert!(report.seeded);
    let again = schema::migrate(db).await.unwrap();
    assert!(again.applied.is_empty() && !again.seeded);
    let all = items::list(db, &Page::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    let expected: Vec<&str> = schema::SEED_ITEMS.iter().map(|(n, ..)| *n).collect();
    assert_eq!(names, expected);
    let camera = all.iter().find(|i| i.name == "Camera").unwrap();
    assert!(!camera.is_available);
    assert_eq!(all[0].price.to_string(), "999.99");
}

fn page(skip: i64, limit: i64, owner_id: Option<i64>) -> Page {
    Page {
        skip,
        limit,
        owner_id,
        ..Page::default()
    }
}

async fn items_round_trip<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    let owner = items::list(db, &page(0, 1, None)).await.unwrap()[0].owner_id;
    let name = "Robert'); DROP TABLE items;-- ünïcødé 🚀";
    let created = items::create(
        db,
        NewItem {
            name: name.to_string(),
            description: None,
            price: Price::parse("99999999.99").unwrap(),
            is_available: true,
            owner_id: owner,
        },
    )
    .await
    .unwrap();
    assert_eq!(created.name, name, "stored verbatim");
    assert_eq!(created.price.to_string(), "99999999.99");
    assert!(created.created_at.ends_with('Z'), "{}", created.created_at);
    let json = created.to_json();
    assert!(json.contains("\"price\":99999999.99"), "{json}");
    assert!(json.contains("\"description\":null"), "{json}");

    assert_eq!(
        items::get(db, created.id).await.unwrap(),
        Some(created.clone())
    );
    let last = items::list(db, &page(10, 5, None)).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].id, created.id);
    let newest_first = Page {
        order: Order::Descending,
        ..page(0, 3, Some(owner))
    };
    let ids: Vec<i64> = items::list(db, &newest_first)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [created.id, created.id - 1, created.id - 2]);
    assert_eq!(
        items::list(db, &page(0, 3, Some(owner)))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        items::list(db, &page(0, 3, Some(owner + 1000)))
            .await
            .unwrap()
            .is_empty()
    );

    let changed = items::update(
        db,
        created.id,
        &ItemFields {
            price: Some(Price::parse("0.10").unwrap()),
            description: Some(Some("now described".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(changed.name, name, "absent fields are kept");
    assert_eq!(changed.price.to_string(), "0.10");
    assert_eq!(changed.description.as_deref(), Some("now described"));
    let cleared = items::update(
        db,
        created.id,
        &ItemFields {
            description: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(cleared.description, None);
    assert_eq!(
        items::update(db, 999_999, &ItemFields::default())
            .await
            .unwrap(),
        None
    );

    assert!(items::delete(db, created.id).await.unwrap());
    assert!(!items::delete(db, created.id).await.unwrap());
    assert_eq!(items::get(db, created.id).await.unwrap(), None);
}

/// `nexa db migrate` and `nexa db seed`: the two halves of first use, run
/// apart. Seeding refuses a schema that is not at the latest version.
async fn migrations_and_seed_run_apart<D: Database>(db: &D) {
    let refused = schema::seed_if_empty(db).await.unwrap_err();
    assert!(refused.to_string().contains("version 0"), "{refused}");
    let migrated = schema::migrate_schema(db).await.unwrap();
    let latest = schema::latest_version();
    assert_eq!(
        (
            migrated.version_before,
            migrated.version_after,
            migrated.seeded
        ),
        (0, latest, false)
    );
    assert_eq!(migrated.applied, (1..=latest).collect::<Vec<_>>());
    assert_eq!(number(db, "SELECT COUNT(*) FROM users").await, 0);
    let again = schema::migrate_schema(db).await.unwrap();
    assert_eq!(
        (again.version_before, again.version_after, again.applied),
        (latest, latest, vec![])
    );
    let seeded = schema::seed_if_empty(db).await.unwrap();
    assert!(seeded.seeded && seeded.applied.is_empty(), "{seeded:?}");
    assert_eq!(
        number(db, "SELECT COUNT(*) FROM items").await,
        schema::SEED_ITEMS.len() as i64
    );
    assert!(!schema::seed_if_empty(db).await.unwrap().seeded);
    // What components run on first use finds nothing left to do.
    let first_use = schema::migrate(db).await.unwrap();
    assert!(first_use.applied.is_empty() && !first_use.seeded);
}

on_both_databases!(
    first_use_migrates_and_seeds_once,
    items_round_trip,
    migrations_and_seed_run_apart
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_seeds_once_on_postgres() {
    let database = PgDatabase::create().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let db = database.connect().await;
        tasks.push(tokio::spawn(async move {
            schema::migrate(&db).await.map(|r| r.seeded)
        }));
    }
    let mut seeded = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            seeded += 1;
        }
    }
    assert_eq!(seeded, 1);
    let db = database.connect().await;
    let users = db.query("SELECT count(*) FROM users", &[]).await.unwrap();
    assert_eq!(users[0][0], Value::Int(1));
    drop(db);
    database.drop_database().await;
}

#[test]
fn concurrent_first_use_seeds_once_on_sqlite() {
    let dir = tempfile_dir();
    let path = dir.join("db.sqlite");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    schema::migrate(&SqliteDatabase::open(&path).unwrap())
                        .await
                        .map(|r| r.seeded)
                })
            })
        })
        .collect();
    let seeded = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .filter(|s| *s)
        .count();
    assert_eq!(seeded, 1);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("nexa-api-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---- users -----------------------------------------------------------------

use nexa_api::repository::users::{self, CreateError};
use nexa_api::users::NewUser;

fn registration(email: &str, username: &str) -> NewUser {
    NewUser {
        email: email.into(),
        username: username.into(),
        password: "correct horse".into(),
        role: None,
    }
}

async fn users_round_trip<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    let alice = users::create(db, &registration("alice@example.com", "alice"), "hash-a")
        .await
        .unwrap();
    assert_eq!((alice.role.as_str(), alice.is_active), ("user", true));
    assert!(alice.created_at.ends_with('Z'));
    assert!(
        !alice.to_json().to_string().contains("hash"),
        "the hash never leaves"
    );
    assert_eq!(
        users::create(db, &registration("alice@example.com", "other"), "h").await,
        Err(CreateError::EmailTaken)
    );
    assert_eq!(
        users::create(db, &registration("other@example.com", "alice"), "h").await,
        Err(CreateError::UsernameTaken)
    );
    assert_eq!(users::get(db, alice.id).await.unwrap(), Some(alice.clone()));
    let (found, stored_hash) = users::by_username(db, "alice").await.unwrap().unwrap();
    assert_eq!((found, stored_hash.as_str()), (alice.clone(), "hash-a"));
    assert_eq!(users::by_username(db, "nobody").await.unwrap(), None);
    let all = users::list(db, 0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
        ["admin", "alice"]
    );
    assert_eq!(users::list(db, 1, 10).await.unwrap(), vec![alice]);
}

on_both_databases!(users_round_trip);

/// The seed's `admin` cannot log in until the auth component gives it
/// `admin_password`, which happens once: later calls neither hash nor replace.
async fn the_admin_password_is_provisioned_once<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    let (admin, stored) = users::by_username(db, "admin").await.unwrap().unwrap();
    assert_eq!(
        (admin.role.as_str(), stored.as_str()),
        ("admin", users::NO_PASSWORD)
    );
    assert!(users::provision_admin_password(db, hash).await.unwrap());
    let (_, stored) = users::by_username(db, "admin").await.unwrap().unwrap();
    assert_eq!(Ok(stored), hash());
    assert!(
        !users::provision_admin_password(db, || panic!("must not hash again"))
            .await
            .unwrap()
    );
}

on_both_databases!(the_admin_password_is_provisioned_once);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_registration_race_has_one_winner_on_postgres() {
    let database = PgDatabase::create().await;
    schema::migrate(&database.connect().await).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let db = database.connect().await;
        tasks.push(tokio::spawn(async move {
            users::create(
                &db,
                &registration("race@example.com", &format!("racer{i}")),
                "h",
            )
            .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(CreateError::EmailTaken) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1);
    database.drop_database().await;
}

// ---- sessions --------------------------------------------------------------

use nexa_api::repository::sessions::{self, Lifetime, Refresh};
use nexa_api::storage::Dialect;

/// A refresh ttl of `ttl_secs`, and an absolute end far away.
fn sliding(ttl_secs: i64) -> Lifetime {
    Lifetime {
        ttl_secs,
        max_secs: 30 * 86400,
    }
}

/// The timestamp `secs` from now (negative: ago), as the schema stores it.
fn from_now(dialect: Dialect, secs: i64) -> String {
    match dialect {
        Dialect::Postgres => format!("now() + interval '{secs} seconds'"),
        Dialect::Sqlite => {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '{secs:+} seconds')")
        }
    }
}

/// The first column of the first row of `sql`, as an integer.
async fn number<D: Database>(db: &D, sql: &str) -> i64 {
    let rows = db.query(sql, &[]).await.unwrap();
    rows.first()
        .and_then(|row| row.first())
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{sql} answered {rows:?}"))
}

fn rotated_for(outcome: &Refresh) -> i64 {
    match outcome {
        Refresh::Rotated {
            expires_in_secs, ..
        } => *expires_in_secs,
        other => panic!("not rotated: {other:?}"),
    }
}

async fn refresh_rotation<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    sessions::create(db, "s1", 1, "h1", sliding(3600))
        .await
        .unwrap();
    let rotated = sessions::rotate(db, "h1", "h2", 3600).await.unwrap();
    assert!(
        matches!(&rotated, Refresh::Rotated { session_id, user_id: 1, expires_in_secs }
            if session_id == "s1" && (3598..=3600).contains(expires_in_secs)),
        "{rotated:?}"
    );
    // The old token no longer works, and presenting it revokes the session:
    // even the current token stops working.
    assert_eq!(
        sessions::rotate(db, "h1", "h3", 3600).await.unwrap(),
        Refresh::Reused
    );
    assert_eq!(
        sessions::rotate(db, "h2", "h4", 3600).await.unwrap(),
        Refresh::Invalid
    );
    assert_eq!(
        sessions::rotate(db, "never-issued", "h5", 3600)
            .await
            .unwrap(),
        Refresh::Invalid
    );

    sessions::create(db, "s2", 1, "k1", sliding(3600))
        .await
        .unwrap();
    assert!(sessions::revoke(db, "s2").await.unwrap());
    assert_eq!(
        sessions::rotate(db, "k1", "k2", 3600).await.unwrap(),
        Refresh::Invalid
    );

    sessions::create(db, "s3", 1, "e1", sliding(-1))
        .await
        .unwrap();
    assert_eq!(
        sessions::rotate(db, "e1", "e2", 3600).await.unwrap(),
        Refresh::Invalid,
        "expired"
    );
}

/// However often it is refreshed, a session ends at its absolute end: the
/// sliding expiry never passes it, and the claim itself checks it.
async fn a_session_ends_at_its_absolute_end<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    let short = Lifetime {
        ttl_secs: 3600,
        max_secs: 2,
    };
    assert_eq!(short.first_ttl_secs(), 2, "the first cookie's Max-Age");
    sessions::create(db, "short", 1, "a1", short).await.unwrap();
    // Claimed by no expires_at: only the absolute end can refuse it.
    sessions::create(
        db,
        "stretched",
        1,
        "b1",
        Lifetime {
            ttl_secs: 3600,
            max_secs: 1,
        },
    )
    .await
    .unwrap();
    db.execute(
        &format!(
            "UPDATE sessions SET expires_at = {} WHERE id = 'stretched'",
            from_now(db.dialect(), 86400)
        ),
        &[],
    )
    .await
    .unwrap();
    // And a control that lives on.
    sessions::create(db, "long", 1, "c1", sliding(3600))
        .await
        .unwrap();
    // A session inserted without an absolute end (by hand, as some tests
    // do) is already past it.
    db.execute(
        &format!(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('bare', 1, {})",
            from_now(db.dialect(), 3600)
        ),
        &[],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ('d1', 'bare')",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        sessions::rotate(db, "d1", "d2", 3600).await.unwrap(),
        Refresh::Invalid
    );

    let first = sessions::rotate(db, "a1", "a2", 3600).await.unwrap();
    assert!(
        (0..=2).contains(&rotated_for(&first)),
        "a refresh extends no further than the absolute end: {first:?}"
    );
    assert_eq!(
        number(
            db,
            "SELECT COUNT(*) FROM sessions WHERE id IN ('short', 'long') \
             AND expires_at > absolute_expires_at"
        )
        .await,
        0,
        "no expiry set by create or rotate passes the absolute end"
    );

    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(
        sessions::rotate(db, "a2", "a3", 3600).await.unwrap(),
        Refresh::Invalid,
        "past its absolute end, though the ttl is an hour"
    );
    assert_eq!(
        sessions::rotate(db, "b1", "b2", 3600).await.unwrap(),
        Refresh::Invalid,
        "the claim checks the absolute end, whatever expires_at says"
    );
    let control = sessions::rotate(db, "c1", "c2", 3600).await.unwrap();
    assert!(
        (3598..=3600).contains(&rotated_for(&control)),
        "{control:?}"
    );
}

/// A version-1 database (sessions without an absolute end) migrates to 2:
/// its sessions end at their current expiry, however they are refreshed.
async fn version_1_sessions_migrate<D: Database>(db: &D) {
    let d = db.dialect();
    let first = schema::migrate_to(db, 1).await.unwrap();
    assert_eq!((first.applied, first.seeded), (vec![1], true));
    db.execute(
        &format!(
            "INSERT INTO sessions (id, user_id, expires_at) VALUES ('old', 1, {})",
            from_now(d, 3600)
        ),
        &[],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ('old-1', 'old')",
        &[],
    )
    .await
    .unwrap();

    let second = schema::migrate(db).await.unwrap();
    assert_eq!((second.applied, second.seeded), (vec![2], false));
    assert_eq!(
        number(
            db,
            "SELECT COUNT(*) FROM sessions WHERE id = 'old' AND absolute_expires_at = expires_at"
        )
        .await,
        1
    );
    let refreshed = sessions::rotate(db, "old-1", "old-2", 7200).await.unwrap();
    assert!(
        (3590..=3600).contains(&rotated_for(&refreshed)),
        "capped at the expiry it had: {refreshed:?}"
    );
    // New sessions work on the migrated schema, and so does the purge index.
    sessions::create(db, "new", 1, "new-1", sliding(60))
        .await
        .unwrap();
    assert!(matches!(
        sessions::rotate(db, "new-1", "new-2", 60).await.unwrap(),
        Refresh::Rotated { .. }
    ));
    throttle::purge(db, 300).await.unwrap();
}

on_both_databases!(
    refresh_rotation,
    a_session_ends_at_its_absolute_end,
    version_1_sessions_migrate
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_one_winner_on_postgres() {
    let database = PgDatabase::create().await;
    let db = database.connect().await;
    schema::migrate(&db).await.unwrap();
    sessions::create(&db, "race", 1, "t0", sliding(3600))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let db = database.connect().await;
        tasks.push(tokio::spawn(async move {
            sessions::rotate(&db, "t0", &format!("t{}", i + 1), 3600).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let winners = outcomes
        .iter()
        .filter(|o| matches!(o, Refresh::Rotated { .. }))
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    // The losers presented a rotated token: the session is revoked.
    assert!(outcomes.contains(&Refresh::Reused));
    drop(db);
    database.drop_database().await;
}

// ---- throttling --------------------------------------------------------------

use nexa_api::repository::login_failures::{self as throttle, Limit, Reservation};

const FIVE_MINUTES: Limit = Limit {
    max: 3,
    window_secs: 300,
};

fn counted(reservation: Reservation) -> (i64, bool) {
    match reservation {
        Reservation::Counted {
            number,
            window_left_secs,
            opened_window,
        } => {
            assert!(
                (295..=300).contains(&window_left_secs),
                "an honest window: {reservation:?}"
            );
            (number, opened_window)
        }
        Reservation::Refused { .. } => panic!("refused"),
    }
}

async fn failures<D: Database>(db: &D, key: &str) -> i64 {
    number(
        db,
        &format!("SELECT COALESCE(SUM(failures), 0) FROM login_failures WHERE key = '{key}'"),
    )
    .await
}

async fn reservations_count_up_to_the_limit<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    for expected in 1..=3 {
        let reservation = throttle::reserve(db, "user:alice", FIVE_MINUTES)
            .await
            .unwrap();
        assert_eq!(counted(reservation), (expected, expected == 1));
    }
    let refused = throttle::reserve(db, "user:alice", FIVE_MINUTES)
        .await
        .unwrap();
    assert!(
        matches!(refused, Reservation::Refused { window_left_secs } if (295..=300).contains(&window_left_secs)),
        "{refused:?}"
    );
    assert_eq!(
        failures(db, "user:alice").await,
        3,
        "a refused attempt counts nothing"
    );
    assert_eq!(
        counted(
            throttle::reserve(db, "user:bob", FIVE_MINUTES)
                .await
                .unwrap()
        ),
        (1, true),
        "per key"
    );
    throttle::refund(db, "user:alice").await.unwrap();
    assert_eq!(
        counted(
            throttle::reserve(db, "user:alice", FIVE_MINUTES)
                .await
                .unwrap()
        ),
        (3, false),
        "a refunded attempt is not counted"
    );
    throttle::clear(db, "user:alice").await.unwrap();
    assert_eq!(
        counted(
            throttle::reserve(db, "user:alice", FIVE_MINUTES)
                .await
                .unwrap()
        ),
        (1, true)
    );
    throttle::refund(db, "user:nobody").await.unwrap();

    // A window that has ended starts over, also at the limit.
    let ended = Limit {
        max: 3,
        window_secs: 0,
    };
    for _ in 0..5 {
        assert_eq!(
            throttle::reserve(db, "user:carol", ended).await.unwrap(),
            Reservation::Counted {
                number: 1,
                window_left_secs: 0,
                opened_window: true
            }
        );
    }
}

/// Adds a row for `key` whose window started `secs_ago` seconds ago.
async fn window_started<D: Database>(db: &D, key: &str, secs_ago: i64) {
    db.execute(
        &format!(
            "INSERT INTO login_failures (key, failures, window_started_at) VALUES ('{key}', 2, {})",
            from_now(db.dialect(), -secs_ago)
        ),
        &[],
    )
    .await
    .unwrap();
}

/// The keys in login_failures, sorted (in Rust: not by a collation).
async fn keys<D: Database>(db: &D) -> Vec<String> {
    let mut keys: Vec<String> = db
        .query("SELECT key FROM login_failures", &[])
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| row.into_iter().next().and_then(Value::into_text))
        .collect();
    keys.sort();
    keys
}

async fn purging_deletes_ended_windows_only<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    window_started(db, "old-1", 1000).await;
    window_started(db, "old-2", 301).await;
    window_started(db, "recent", 200).await;
    throttle::reserve(db, "live", FIVE_MINUTES).await.unwrap();
    assert_eq!(throttle::purge(db, 300).await.unwrap(), 2);
    assert_eq!(keys(db).await, ["live", "recent"]);

    // Bounded: at most a batch at a time.
    for i in 0..150 {
        window_started(db, &format!("many-{i:03}"), 900).await;
    }
    assert_eq!(throttle::purge(db, 300).await.unwrap(), 100);
    assert_eq!(throttle::purge(db, 300).await.unwrap(), 50);
    assert_eq!(throttle::purge(db, 300).await.unwrap(), 0);
    assert_eq!(keys(db).await, ["live", "recent"]);

    // A login purges when one of its reservations opens a window, only then.
    let passwords = Counting::default();
    let policy = LoginPolicy::default();
    window_started(db, "old-3", 1000).await;
    login::check(db, &passwords, policy, "ghost", "x", "10.9.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(
        keys(db).await,
        ["live", "pair:10.9.0.1|ghost", "recent", "user:ghost"]
    );
    window_started(db, "old-4", 1000).await;
    login::check(db, &passwords, policy, "ghost", "x", "10.9.0.1:2")
        .await
        .unwrap_err();
    assert!(keys(db).await.contains(&"old-4".to_string()));
}

on_both_databases!(
    reservations_count_up_to_the_limit,
    purging_deletes_ended_windows_only
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_reservations_are_counted_exactly_on_postgres() {
    let database = PgDatabase::create().await;
    schema::migrate(&database.connect().await).await.unwrap();
    let limit = Limit {
        max: 5,
        window_secs: 300,
    };
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = database.connect().await;
        tasks.push(tokio::spawn(async move {
            throttle::reserve(&db, "pair:1.2.3.4|x", limit).await
        }));
    }
    let mut counts = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Reservation::Counted { number, .. } => counts.push(number),
            Reservation::Refused { .. } => refused += 1,
        }
    }
    counts.sort();
    assert_eq!(
        counts,
        [1, 2, 3, 4, 5],
        "each counted once, up to the limit"
    );
    assert_eq!(refused, 11);
    let db = database.connect().await;
    assert_eq!(failures(&db, "pair:1.2.3.4|x").await, 5);
    drop(db);
    database.drop_database().await;
}

// ---- logging in ----------------------------------------------------------------

use nexa_api::auth::login::{self, PasswordCheck};
use nexa_api::auth::throttle::LoginPolicy;
use nexa_api::error::ApiError;

/// Counts verifications; "password" matches the hash "hash:password".
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl Counting {
    fn checks(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl PasswordCheck for Counting {
    fn verify(&self, password: &str, hash: &str) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        hash == format!("hash:{password}")
    }

    fn dummy_hash(&self) -> &str {
        "dummy"
    }
}

/// The `Retry-After` of a 429, else `None`.
fn retry_after(error: &ApiError) -> Option<u64> {
    match error {
        ApiError::TooManyRequests { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    }
}

const BAD_CREDENTIALS: ApiError = ApiError::Unauthorized("Incorrect username or password");

/// 3 failures per (username, client) per 5 minutes, 10 per username per minute.
const POLICY: LoginPolicy = LoginPolicy {
    max_failures: 3,
    lockout_secs: 300,
    user_max_failures: 10,
    user_window_secs: 60,
};

async fn with_dora<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    users::create(
        db,
        &registration("dora@example.com", "dora"),
        "hash:right password",
    )
    .await
    .unwrap();
}

async fn logins_cost_one_verification<D: Database>(db: &D) {
    with_dora(db).await;
    let passwords = Counting::default();
    let user = login::check(
        db,
        &passwords,
        POLICY,
        "dora",
        "right password",
        "10.0.0.1:5000",
    )
    .await
    .unwrap();
    assert_eq!(user.username, "dora");
    assert_eq!(passwords.checks(), 1);

    // Unknown usernames cost the same one verification.
    let error = login::check(db, &passwords, POLICY, "ghost", "x", "10.0.0.2:1")
        .await
        .unwrap_err();
    assert_eq!(error, BAD_CREDENTIALS);
    assert_eq!(passwords.checks(), 2);

    // A login never writes to users.
    let before = db
        .query(
            "SELECT CAST(updated_at AS TEXT) FROM users WHERE username = 'dora'",
            &[],
        )
        .await
        .unwrap();
    login::check(db, &passwords, POLICY, "dora", "wrong", "10.0.2.1:1")
        .await
        .unwrap_err();
    login::check(
        db,
        &passwords,
        POLICY,
        "dora",
        "right password",
        "10.0.2.1:1",
    )
    .await
    .unwrap();
    let after = db
        .query(
            "SELECT CAST(updated_at AS TEXT) FROM users WHERE username = 'dora'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(before, after);
}

/// Failures lock one client out of one username: the same username from
/// another client, with the right password, still logs in.
async fn a_client_locked_out_of_a_username_locks_out_no_one_else<D: Database>(db: &D) {
    with_dora(db).await;
    let passwords = Counting::default();
    for port in 1..=3 {
        let error = login::check(
            db,
            &passwords,
            POLICY,
            "dora",
            "wrong",
            &format!("10.0.1.1:{port}"),
        )
        .await
        .unwrap_err();
        assert_eq!(error, BAD_CREDENTIALS);
    }
    for username in ["dora", "DORA"] {
        let locked = login::check(
            db,
            &passwords,
            POLICY,
            username,
            "right password",
            "10.0.1.1:9",
        )
        .await
        .unwrap_err();
        assert!(
            retry_after(&locked).is_some_and(|s| (295..=300).contains(&s)),
            "{locked:?}"
        );
    }
    assert_eq!(passwords.checks(), 3, "a locked-out login verifies nothing");

    let elsewhere = login::check(
        db,
        &passwords,
        POLICY,
        "dora",
        "right password",
        "10.0.1.2:1",
    )
    .await;
    assert_eq!(
        elsewhere.map(|u| u.username),
        Ok("dora".to_string()),
        "another client is not locked out"
    );
    let other_user = login::check(db, &passwords, POLICY, "ghost", "x", "10.0.1.1:1")
        .await
        .unwrap_err();
    assert_eq!(
        other_user, BAD_CREDENTIALS,
        "nor is this client, at another username"
    );
}

/// Failures from many clients make the username wait, briefly: 429 with a
/// Retry-After within its short window, also for the right password, and
/// the attempt refused there gives its pair reservation back.
async fn the_username_limit_answers_with_a_short_retry_after<D: Database>(db: &D) {
    with_dora(db).await;
    let passwords = Counting::default();
    let policy = LoginPolicy {
        user_max_failures: 4,
        user_window_secs: 2,
        ..POLICY
    };
    for client in 1..=4 {
        let error = login::check(
            db,
            &passwords,
            policy,
            "dora",
            "wrong",
            &format!("10.0.2.{client}:1"),
        )
        .await
        .unwrap_err();
        assert_eq!(error, BAD_CREDENTIALS);
    }
    let refused = login::check(
        db,
        &passwords,
        policy,
        "dora",
        "right password",
        "10.0.2.5:1",
    )
    .await
    .unwrap_err();
    assert!(
        retry_after(&refused).is_some_and(|s| (1..=2).contains(&s)),
        "{refused:?}"
    );
    assert_eq!(passwords.checks(), 4);
    assert_eq!(failures(db, "pair:10.0.2.5|dora").await, 0, "given back");
    assert_eq!(failures(db, "user:dora").await, 4);

    std::thread::sleep(std::time::Duration::from_millis(2100));
    let later = login::check(
        db,
        &passwords,
        policy,
        "dora",
        "right password",
        "10.0.2.5:1",
    )
    .await;
    assert!(later.is_ok(), "{later:?}");
}

/// A success forgets its client's failures and gives its own attempt back
/// to the username, but leaves the username's other failures counted.
async fn successful_logins_give_back_only_their_own_attempt<D: Database>(db: &D) {
    with_dora(db).await;
    let passwords = &Counting::default();
    let policy = LoginPolicy {
        user_max_failures: 3,
        ..POLICY
    };
    let attempt = move |password: &'static str, client: &'static str| {
        login::check(db, passwords, policy, "dora", password, client)
    };
    attempt("wrong", "10.0.3.1:1").await.unwrap_err();
    attempt("wrong", "10.0.3.2:1").await.unwrap_err();
    // Were successes counted, the username would be full after one.
    for _ in 0..10 {
        attempt("right password", "10.0.3.2:1").await.unwrap();
    }
    assert_eq!(failures(db, "pair:10.0.3.2|dora").await, 0, "forgotten");
    assert_eq!(failures(db, "pair:10.0.3.1|dora").await, 1, "not this one");
    // The two failures stay counted against the username: one more fits...
    assert_eq!(
        attempt("wrong", "10.0.3.3:1").await.unwrap_err(),
        BAD_CREDENTIALS
    );
    // ...and then it is full.
    let full = attempt("wrong", "10.0.3.4:1").await.unwrap_err();
    assert!(
        retry_after(&full).is_some_and(|s| (55..=60).contains(&s)),
        "{full:?}"
    );
}

/// `inner`, except that just before its `at`th statement it runs
/// `meanwhile` to completion: another login, interleaved with this one at a
/// chosen point, deterministically.
struct Interleaved<'a, D, F> {
    inner: &'a D,
    at: usize,
    seen: std::cell::Cell<usize>,
    meanwhile: std::cell::RefCell<Option<F>>,
}

impl<D: Database, F: std::future::Future<Output = ()>> Interleaved<'_, D, F> {
    async fn step(&self) {
        self.seen.set(self.seen.get() + 1);
        if self.seen.get() == self.at {
            let meanwhile = self.meanwhile.borrow_mut().take();
            if let Some(meanwhile) = meanwhile {
                meanwhile.await;
            }
        }
    }
}

impl<D: Database, F: std::future::Future<Output = ()>> Database for Interleaved<'_, D, F> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        self.step().await;
        self.inner.execute(sql, params).await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DbError> {
        self.step().await;
        self.inner.query(sql, params).await
    }
}

/// A guess from a client locked out of the username, at whatever point a
/// concurrent login interleaves with it, never makes that login fail: the
/// guess is refused by its pair before it touches the username's budget,
/// even when that budget has one attempt left.
async fn a_refused_attempt_disturbs_no_concurrent_one<D: Database>(db: &D) {
    with_dora(db).await;
    let passwords = Counting::default();
    let policy = LoginPolicy {
        user_max_failures: 4,
        ..POLICY
    };
    for _ in 0..3 {
        login::check(db, &passwords, policy, "dora", "wrong", "10.0.5.1:1")
            .await
            .unwrap_err();
    }
    let mut interleaved = 0;
    for at in 1..=4 {
        let outcome = std::cell::RefCell::new(None);
        let real_user = async {
            let login = login::check(
                db,
                &passwords,
                policy,
                "dora",
                "right password",
                "10.0.5.2:1",
            );
            *outcome.borrow_mut() = Some(login.await.map(|u| u.username));
        };
        let guesser = Interleaved {
            inner: db,
            at,
            seen: std::cell::Cell::new(0),
            meanwhile: std::cell::RefCell::new(Some(real_user)),
        };
        let guess = login::check(&guesser, &passwords, policy, "dora", "guess", "10.0.5.1:2")
            .await
            .unwrap_err();
        assert!(
            retry_after(&guess).is_some_and(|s| (295..=300).contains(&s)),
            "{guess:?}"
        );
        drop(guesser);
        match outcome.into_inner() {
            Some(login) => {
                assert_eq!(
                    login,
                    Ok("dora".to_string()),
                    "interleaved at statement {at}"
                );
                interleaved += 1;
            }
            None => break,
        }
    }
    assert!(
        interleaved >= 1,
        "the real user's login ran inside the guess"
    );
    assert_eq!(failures(db, "user:dora").await, 3);
}

/// A username no registration allows is refused before anything is stored.
async fn overlong_usernames_store_nothing<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    let passwords = Counting::default();
    let count = "SELECT COUNT(*) FROM login_failures";
    let longest = "a".repeat(*nexa_api::users::USERNAME_BYTES.end());
    let error = login::check(
        db,
        &passwords,
        POLICY,
        &format!("{longest}b"),
        "x",
        "10.0.4.1:1",
    )
    .await
    .unwrap_err();
    assert_eq!(error, BAD_CREDENTIALS);
    assert_eq!((number(db, count).await, passwords.checks()), (0, 0));
    // The longest allowed is counted as usual.
    login::check(db, &passwords, POLICY, &longest, "x", "10.0.4.1:1")
        .await
        .unwrap_err();
    assert_eq!((number(db, count).await, passwords.checks()), (2, 1));
}

on_both_databases!(
    logins_cost_one_verification,
    a_client_locked_out_of_a_username_locks_out_no_one_else,
    a_refused_attempt_disturbs_no_concurrent_one,
    the_username_limit_answers_with_a_short_retry_after,
    successful_logins_give_back_only_their_own_attempt,
    overlong_usernames_store_nothing
);

/// Runs each named `async fn(url: String)` as two tests on a multi-threaded
/// runtime, so they can open several connections to one database and use
/// them at once: `<name>::sqlite` (a file) and `<name>::postgres`.
macro_rules! on_both_databases_in_parallel {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let dir = tempfile_dir();
                    super::$name(format!("sqlite://{}", dir.join("db.sqlite").display())).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let database = PgDatabase::create().await;
                    super::$name(database.url()).await;
                    database.drop_database().await;
                }
            }
        )*
    };
}

/// The outcome of one login attempt: its status and any Retry-After.
type Answer = (u16, Option<u64>);

/// Sends `guesses` wrong passwords for `eve` at once, each on a connection of
/// its own, the `i`th from `client(i)`; returns the answers, sorted.
async fn guess_at_once(
    url: &str,
    passwords: &std::sync::Arc<Counting>,
    policy: LoginPolicy,
    guesses: usize,
    client: fn(usize) -> String,
) -> Vec<Answer> {
    // Every connection first, then all guesses released together.
    let mut connections = Vec::new();
    for _ in 0..guesses {
        connections.push(NativeDatabase::open(url).await.unwrap());
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(guesses));
    let mut tasks = Vec::new();
    for (i, db) in connections.into_iter().enumerate() {
        let passwords = passwords.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let guess = format!("guess {i}");
            let error = login::check(&db, &*passwords, policy, "eve", &guess, &client(i))
                .await
                .unwrap_err();
            (error.status(), retry_after(&error))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers.sort();
    answers
}

async fn with_eve(url: &str) -> NativeDatabase {
    let db = NativeDatabase::open(url).await.unwrap();
    schema::migrate(&db).await.unwrap();
    users::create(&db, &registration("eve@example.com", "eve"), "hash:secret")
        .await
        .unwrap();
    db
}

/// One client guessing in parallel gets `max_failures` password checks, no
/// more, and its refused guesses never touch the username's budget (more
/// guesses than `user_max_failures`, and every refusal is the pair's): the
/// right password from elsewhere still works.
async fn one_client_guessing_in_parallel(url: String) {
    let db = with_eve(&url).await;
    let passwords = std::sync::Arc::new(Counting::default());
    let policy = LoginPolicy::default();
    let answers = guess_at_once(&url, &passwords, policy, 30, |i| {
        format!("10.1.0.1:{}", 1000 + i)
    })
    .await;
    let (checked, throttled) = answers.split_at(5);
    assert!(checked.iter().all(|a| *a == (401, None)), "{answers:?}");
    assert!(
        throttled.iter().all(
            |(status, retry)| *status == 429 && retry.is_some_and(|s| (295..=300).contains(&s))
        ),
        "{answers:?}"
    );
    assert_eq!(passwords.checks(), 5, "no more checks than max_failures");
    assert_eq!(failures(&db, "user:eve").await, 5);
    let elsewhere = login::check(&db, &*passwords, policy, "eve", "secret", "10.1.0.2:1").await;
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
}

/// Many clients guessing one username in parallel get `user_max_failures`
/// password checks in all; the attempts the username refused gave their
/// pair reservations back.
async fn many_clients_guessing_in_parallel(url: String) {
    let db = with_eve(&url).await;
    let passwords = std::sync::Arc::new(Counting::default());
    let policy = LoginPolicy {
        user_max_failures: 5,
        ..LoginPolicy::default()
    };
    let answers = guess_at_once(&url, &passwords, policy, 16, |i| format!("10.2.0.{i}:1")).await;
    let (checked, throttled) = answers.split_at(5);
    assert!(checked.iter().all(|a| *a == (401, None)), "{answers:?}");
    assert!(
        throttled
            .iter()
            .all(|(status, retry)| *status == 429 && retry.is_some_and(|s| (1..=60).contains(&s))),
        "{answers:?}"
    );
    assert_eq!(passwords.checks(), 5);
    assert_eq!(
        number(
            &db,
            "SELECT COALESCE(SUM(failures), 0) FROM login_failures WHERE key LIKE 'pair:%'"
        )
        .await,
        5
    );
}

on_both_databases_in_parallel!(
    one_client_guessing_in_parallel,
    many_clients_guessing_in_parallel
);

// ---- the adapters themselves ---------------------------------------------------

/// `NativeDatabase::open` picks the adapter by URL, and both run the
/// migrations and a round trip through the repository.
#[tokio::test]
async fn native_databases_open_by_url() {
    let dir = tempfile_dir();
    let sqlite = NativeDatabase::open(&format!("sqlite://{}", dir.join("url.sqlite").display()))
        .await
        .unwrap();
    let database = PgDatabase::create().await;
    let postgres = NativeDatabase::open(&database.url()).await.unwrap();
    for db in [&sqlite, &postgres] {
        schema::migrate(db).await.unwrap();
        let first = items::get(db, 1).await.unwrap().unwrap();
        assert_eq!(first.name, "Laptop");
        repository::ping(db).await.unwrap();
    }
    assert!(matches!(
        NativeDatabase::open("mysql://elsewhere").await,
        Err(DbError::Other(_))
    ));
    assert!(matches!(
        NativeDatabase::open("postgres://postgres@127.0.0.1:1/x").await,
        Err(DbError::Unavailable(_))
    ));
    drop(postgres);
    database.drop_database().await;
}
