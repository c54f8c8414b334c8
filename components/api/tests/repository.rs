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
    assert_eq!(report.applied, vec![schema::latest_version()]);
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

on_both_databases!(first_use_migrates_and_seeds_once, items_round_trip);

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

use nexa_api::repository::sessions::{self, Refresh};

async fn refresh_rotation<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    sessions::create(db, "s1", 1, "h1", 3600).await.unwrap();
    assert_eq!(
        sessions::rotate(db, "h1", "h2", 3600).await.unwrap(),
        Refresh::Rotated {
            session_id: "s1".into(),
            user_id: 1
        }
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

    sessions::create(db, "s2", 1, "k1", 3600).await.unwrap();
    assert!(sessions::revoke(db, "s2").await.unwrap());
    assert_eq!(
        sessions::rotate(db, "k1", "k2", 3600).await.unwrap(),
        Refresh::Invalid
    );

    sessions::create(db, "s3", 1, "e1", -1).await.unwrap();
    assert_eq!(
        sessions::rotate(db, "e1", "e2", 3600).await.unwrap(),
        Refresh::Invalid,
        "expired"
    );
}

on_both_databases!(refresh_rotation);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_have_one_winner_on_postgres() {
    let database = PgDatabase::create().await;
    let db = database.connect().await;
    schema::migrate(&db).await.unwrap();
    sessions::create(&db, "race", 1, "t0", 3600).await.unwrap();
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

use nexa_api::repository::login_failures as throttle;

async fn failed_logins_lock_out<D: Database>(db: &D) {
    schema::migrate(db).await.unwrap();
    for expected in 1..=3 {
        let attempt = throttle::reserve(db, "user:alice", 300).await.unwrap();
        assert_eq!(attempt.number, expected);
        assert!(
            (295..=300).contains(&attempt.window_left_secs),
            "an honest Retry-After: {attempt:?}"
        );
    }
    assert_eq!(
        throttle::reserve(db, "user:bob", 300).await.unwrap().number,
        1,
        "per key"
    );
    throttle::refund(db, "user:alice").await.unwrap();
    assert_eq!(
        throttle::reserve(db, "user:alice", 300)
            .await
            .unwrap()
            .number,
        3,
        "a refunded attempt is not counted"
    );
    throttle::clear(db, "user:alice").await.unwrap();
    assert_eq!(
        throttle::reserve(db, "user:alice", 300)
            .await
            .unwrap()
            .number,
        1
    );
    throttle::refund(db, "user:nobody").await.unwrap();

    // A window whose lockout has passed starts over.
    for _ in 0..3 {
        throttle::reserve(db, "user:carol", 0).await.unwrap();
    }
    let fresh = throttle::reserve(db, "user:carol", 0).await.unwrap();
    assert_eq!(
        fresh,
        throttle::Attempt {
            number: 1,
            window_left_secs: 0
        }
    );
}

on_both_databases!(failed_logins_lock_out);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guessing_is_counted_exactly_on_postgres() {
    let database = PgDatabase::create().await;
    schema::migrate(&database.connect().await).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = database.connect().await;
        tasks.push(tokio::spawn(async move {
            throttle::reserve(&db, "addr:1.2.3.4", 300)
                .await
                .map(|attempt| attempt.number)
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().unwrap());
    }
    counts.sort();
    assert_eq!(
        counts,
        (1..=16).collect::<Vec<_>>(),
        "every failure counted once"
    );
    database.drop_database().await;
}

// ---- logging in ----------------------------------------------------------------

use nexa_api::auth::login::{self, PasswordCheck};
use nexa_api::auth::throttle::LoginPolicy;
use nexa_api::error::ApiError;

/// Counts verifications; "password" matches the hash "hash:password".
struct Counting(std::cell::Cell<usize>);

impl PasswordCheck for Counting {
    fn verify(&self, password: &str, hash: &str) -> bool {
        self.0.set(self.0.get() + 1);
        hash == format!("hash:{password}")
    }

    fn dummy_hash(&self) -> &str {
        "dummy"
    }
}

#[tokio::test]
async fn logins_cost_one_verification_and_lock_out() {
    let dir = tempfile_dir();
    let db = sqlite_file(&dir);
    schema::migrate(&db).await.unwrap();
    users::create(
        &db,
        &registration("dora@example.com", "dora"),
        "hash:right password",
    )
    .await
    .unwrap();
    let passwords = Counting(std::cell::Cell::new(0));
    let policy = LoginPolicy {
        max_failures: 3,
        lockout_secs: 300,
    };

    let user = login::check(
        &db,
        &passwords,
        policy,
        "dora",
        "right password",
        "10.0.0.1:5000",
    )
    .await
    .unwrap();
    assert_eq!(user.username, "dora");
    assert_eq!(passwords.0.get(), 1);

    // Unknown usernames cost the same one verification.
    let error = login::check(&db, &passwords, policy, "ghost", "x", "10.0.0.2:1")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ApiError::Unauthorized("Incorrect username or password")
    );
    assert_eq!(passwords.0.get(), 2);

    // Wrong passwords lock the username out after three failures, from any address.
    for port in 0..3 {
        let addr = format!("10.0.1.{port}:1");
        let error = login::check(&db, &passwords, policy, "dora", "wrong", &addr)
            .await
            .unwrap_err();
        assert_eq!(error.status(), 401);
    }
    let error = login::check(
        &db,
        &passwords,
        policy,
        "dora",
        "right password",
        "10.0.9.9:1",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, ApiError::TooManyRequests { retry_after_secs } if (295..=300).contains(&retry_after_secs))
    );
    assert_eq!(passwords.0.get(), 5, "a locked-out login verifies nothing");

    // A login never writes to users.
    let before = db
        .query("SELECT updated_at FROM users WHERE username = 'dora'", &[])
        .await
        .unwrap();
    login::check(&db, &passwords, policy, "admin", "wrong", "10.0.2.1:1")
        .await
        .unwrap_err();
    let after = db
        .query("SELECT updated_at FROM users WHERE username = 'dora'", &[])
        .await
        .unwrap();
    assert_eq!(before, after);
}

/// Counts verifications across tasks; "password" matches the hash "hash:password".
#[derive(Default)]
struct SharedCounting(std::sync::atomic::AtomicUsize);

impl PasswordCheck for SharedCounting {
    fn verify(&self, password: &str, hash: &str) -> bool {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        hash == format!("hash:{password}")
    }

    fn dummy_hash(&self) -> &str {
        "dummy"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_guesses_gets_only_the_allowed_password_checks_on_postgres() {
    let database = PgDatabase::create().await;
    let setup = database.connect().await;
    schema::migrate(&setup).await.unwrap();
    users::create(
        &setup,
        &registration("eve@example.com", "eve"),
        "hash:secret",
    )
    .await
    .unwrap();
    let passwords = std::sync::Arc::new(SharedCounting::default());
    let policy = LoginPolicy {
        max_failures: 5,
        lockout_secs: 300,
    };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let db = database.connect().await;
        let passwords = passwords.clone();
        tasks.push(tokio::spawn(async move {
            let guess = format!("guess {i}");
            let addr = format!("10.1.0.{i}:1");
            login::check(&db, &*passwords, policy, "eve", &guess, &addr)
                .await
                .unwrap_err()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort();
    let expected: Vec<u16> = [401; 5].into_iter().chain([429; 11]).collect();
    assert_eq!(statuses, expected);
    assert_eq!(
        passwords.0.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "no more password checks than the limit, however many guesses arrive at once"
    );
    drop(setup);
    database.drop_database().await;
}

#[tokio::test]
async fn successful_logins_do_not_use_up_the_address() {
    let dir = tempfile_dir();
    let db = sqlite_file(&dir);
    schema::migrate(&db).await.unwrap();
    users::create(&db, &registration("fay@example.com", "fay"), "hash:secret")
        .await
        .unwrap();
    let passwords = Counting(std::cell::Cell::new(0));
    let policy = LoginPolicy {
        max_failures: 3,
        lockout_secs: 300,
    };
    for _ in 0..10 {
        login::check(&db, &passwords, policy, "fay", "secret", "10.2.0.1:1")
            .await
            .unwrap();
    }
    let error = login::check(&db, &passwords, policy, "fay", "wrong", "10.2.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(
        error.status(),
        401,
        "ten good logins left the address's budget whole"
    );
}

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
