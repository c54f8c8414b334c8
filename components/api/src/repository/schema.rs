//! The schema, its versioned migrations for both dialects, and the seed data.
//! `migrate` runs on first use in one transaction under a lock
//! (`pg_advisory_xact_lock` / `BEGIN IMMEDIATE`), so concurrent first requests
//! on several instances neither fail nor seed twice. The same lock serves
//! [`migrate_schema`] and [`seed_if_empty`], the two halves an operator runs
//! apart (`nexa db migrate`, `nexa db seed`).
//!
//! Any component may migrate, so the seed needs no secret: it creates the
//! `admin` account without a usable password ([`users::NO_PASSWORD`]), and
//! only the auth component, which holds `admin_password`, sets it
//! ([`users::provision_admin_password`]) before anyone can log in.

use super::users;
use crate::price::Price;
use crate::storage::{Database, DbError, Dialect, Value};

/// `(version, Postgres SQL, SQLite SQL)`, applied in order, each once.
const MIGRATIONS: &[(i64, &[&str], &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE users (
            id BIGSERIAL PRIMARY KEY,
            email TEXT NOT NULL,
            username TEXT NOT NULL,
            hashed_password TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
            is_active BOOLEAN NOT NULL DEFAULT TRUE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            CONSTRAINT users_email_key UNIQUE (email),
            CONSTRAINT users_username_key UNIQUE (username))",
            "CREATE TABLE items (
            id BIGSERIAL PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT,
            price NUMERIC(10, 2) NOT NULL CHECK (price >= 0),
            is_available BOOLEAN NOT NULL DEFAULT TRUE,
            owner_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "CREATE INDEX items_owner_id ON items (owner_id)",
            "CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            revoked BOOLEAN NOT NULL DEFAULT FALSE,
            expires_at TIMESTAMPTZ NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            // Every refresh token ever issued (by hash): a rotated one presented
            // again reveals a stolen token, and revokes its session.
            "CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            rotated BOOLEAN NOT NULL DEFAULT FALSE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "CREATE TABLE login_failures (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            window_started_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        ],
        &[
            "CREATE TABLE users (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            email TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
            username TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
            hashed_password TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            // Prices are exact integer cents in SQLite, which has no decimal type.
            "CREATE TABLE items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            description TEXT,
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            is_available INTEGER NOT NULL DEFAULT 1,
            owner_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            "CREATE INDEX items_owner_id ON items (owner_id)",
            "CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            revoked INTEGER NOT NULL DEFAULT 0,
            expires_at TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            "CREATE TABLE refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            rotated INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
            "CREATE TABLE login_failures (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            window_started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))",
        ],
    ),
    // A session's absolute end, which refreshes never move: `expires_at`
    // slides forward on every rotation but never past it. Existing sessions
    // end at their current `expires_at`. A row inserted without one (only by
    // hand: `sessions::create` always sets it) is already past it, in both
    // dialects: '-infinity' and '' sort before every time, so it can never
    // be refreshed (SQLite adds a NOT NULL column only with a default).
    // And an index for purging ended login_failures windows, oldest first.
    (
        2,
        &[
            "ALTER TABLE sessions ADD COLUMN absolute_expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'",
            "UPDATE sessions SET absolute_expires_at = expires_at",
            "CREATE INDEX login_failures_window_started_at ON login_failures (window_started_at)",
        ],
        &[
            "ALTER TABLE sessions ADD COLUMN absolute_expires_at TEXT NOT NULL DEFAULT ''",
            "UPDATE sessions SET absolute_expires_at = expires_at",
            "CREATE INDEX login_failures_window_started_at ON login_failures (window_started_at)",
        ],
    ),
];

/// The newest schema version.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, ..)| *v)
}

/// The sample items an empty database starts with: (name, description, price, available).
pub const SEED_ITEMS: &[(&str, &str, &str, bool)] = &[
    ("Laptop", "A portable computer", "999.99", true),
    ("Smartphone", "A phone that does everything", "699.99", true),
    ("Headphones", "Noise-cancelling, over-ear", "199.99", true),
    ("Tablet", "A large touch screen", "449.99", true),
    ("Smartwatch", "A computer on your wrist", "249.99", true),
    ("Camera", "Mirrorless, 24 megapixels", "849.99", false),
    ("Monitor", "27 inches, 4K", "329.99", true),
    ("Keyboard", "Mechanical, quiet switches", "89.99", true),
    ("Mouse", "Wireless, ergonomic", "49.99", true),
    ("Speakers", "A pair of bookshelf speakers", "149.99", true),
];

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema's version when the run took the lock (0: no schema).
    pub version_before: i64,
    pub version_after: i64,
    pub applied: Vec<i64>,
    pub seeded: bool,
}

/// What one locked run does: migrate up to `target` (or not at all), then
/// seed an empty database (or not).
#[derive(Clone, Copy)]
struct Steps {
    target: Option<i64>,
    seed: bool,
}

/// Brings the schema up to date and seeds an empty database, once, whatever
/// else runs concurrently. What components do on first use.
pub async fn migrate<D: Database>(db: &D) -> Result<MigrationReport, DbError> {
    if let Some(current) = already_current(db).await {
        return Ok(current);
    }
    migrate_to(db, latest_version()).await
}

/// The report of a run that would do nothing, when a plain read shows the
/// schema at the latest version and the database seeded. Every new instance
/// asks: the lock (`BEGIN IMMEDIATE` on SQLite, a transaction and an
/// advisory lock on Postgres) is only for when there is work, so instances
/// starting under load neither queue on it nor stall readers. Any doubt
/// (no table yet, an error) is settled under the lock.
async fn already_current<D: Database>(db: &D) -> Option<MigrationReport> {
    let first_int = |rows: Vec<Vec<Value>>| rows.first()?.first()?.as_i64();
    let version = first_int(
        db.query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .ok()?,
    )?;
    let seeded = first_int(
        db.query(
            "SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) AS one",
            &[],
        )
        .await
        .ok()?,
    )?;
    (version == latest_version() && seeded == 1).then(|| MigrationReport {
        version_before: version,
        version_after: version,
        applied: Vec::new(),
        seeded: false,
    })
}

/// [`migrate`], but no further than `target` (for testing a later
/// migration on a database of an earlier version).
pub async fn migrate_to<D: Database>(db: &D, target: i64) -> Result<MigrationReport, DbError> {
    locked(
        db,
        Steps {
            target: Some(target),
            seed: true,
        },
    )
    .await
}

/// Only the migrations, without the seed (`nexa db migrate`).
pub async fn migrate_schema<D: Database>(db: &D) -> Result<MigrationReport, DbError> {
    locked(
        db,
        Steps {
            target: Some(latest_version()),
            seed: false,
        },
    )
    .await
}

/// Only the seed, into a database whose schema is already at the latest
/// version (`nexa db seed`); an error naming the version otherwise.
pub async fn seed_if_empty<D: Database>(db: &D) -> Result<MigrationReport, DbError> {
    locked(
        db,
        Steps {
            target: None,
            seed: true,
        },
    )
    .await
}

/// Runs `steps` in one transaction under the schema lock.
async fn locked<D: Database>(db: &D, steps: Steps) -> Result<MigrationReport, DbError> {
    let dialect = db.dialect();
    match dialect {
        Dialect::Postgres => {
            db.execute("BEGIN", &[]).await?;
            // One lock id for "nexa schema": concurrent migrators wait here.
            db.execute("SELECT pg_advisory_xact_lock(7235917400112)", &[])
                .await?;
        }
        Dialect::Sqlite => {
            db.execute("BEGIN IMMEDIATE", &[]).await?;
        }
    }
    let outcome = run_steps(db, dialect, steps).await;
    match &outcome {
        Ok(_) => db.execute("COMMIT", &[]).await.map(drop)?,
        Err(_) => {
            let _ = db.execute("ROLLBACK", &[]).await;
        }
    }
    outcome
}

async fn run_steps<D: Database>(
    db: &D,
    dialect: Dialect,
    steps: Steps,
) -> Result<MigrationReport, DbError> {
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        &[],
    )
    .await?;
    let version_before = db
        .query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut applied = Vec::new();
    for (version, postgres, sqlite) in MIGRATIONS {
        let wanted = steps.target.is_some_and(|target| *version <= target);
        if *version <= version_before || !wanted {
            continue;
        }
        let statements = match dialect {
            Dialect::Postgres => postgres,
            Dialect::Sqlite => sqlite,
        };
        for statement in *statements {
            db.execute(statement, &[]).await?;
        }
        let insert = match dialect {
            Dialect::Postgres => {
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now()::text)"
            }
            Dialect::Sqlite => {
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, datetime('now'))"
            }
        };
        db.execute(insert, &[Value::Int(*version)]).await?;
        applied.push(*version);
    }
    let version_after = applied.last().copied().unwrap_or(version_before);
    if steps.target.is_none() && version_after < latest_version() {
        return Err(DbError::Other(format!(
            "the schema is at version {version_after}, not {}: migrate it before seeding",
            latest_version()
        )));
    }

    let mut seeded = false;
    if steps.seed {
        let users = db
            .query("SELECT COUNT(*) FROM users", &[])
            .await?
            .first()
            .and_then(|row| row.first())
            .and_then(Value::as_i64)
            .unwrap_or(0);
        seeded = users == 0;
        if seeded {
            seed(db, dialect).await?;
        }
    }
    Ok(MigrationReport {
        version_before,
        version_after,
        applied,
        seeded,
    })
}

/// The `admin` account (its password unset) and the sample items it owns.
async fn seed<D: Database>(db: &D, dialect: Dialect) -> Result<(), DbError> {
    let (insert_admin, insert_item) = match dialect {
        Dialect::Postgres => (
            "INSERT INTO users (email, username, hashed_password, role) VALUES ('admin@example.com', 'admin', $1, 'admin') RETURNING id",
            "INSERT INTO items (name, description, price, is_available, owner_id) VALUES ($1, $2, $3::text::numeric, $4, $5)",
        ),
        Dialect::Sqlite => (
            "INSERT INTO users (email, username, hashed_password, role) VALUES ('admin@example.com', 'admin', ?1, 'admin') RETURNING id",
            "INSERT INTO items (name, description, price_cents, is_available, owner_id) VALUES (?1, ?2, ?3, ?4, ?5)",
        ),
    };
    let admin = db
        .query(insert_admin, &[Value::from(users::NO_PASSWORD)])
        .await?
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_i64)
        .ok_or_else(|| DbError::Other("seeding: no admin id returned".into()))?;
    for (name, description, price, available) in SEED_ITEMS {
        let price =
            Price::parse(price).map_err(|e| DbError::Other(format!("seed price {price}: {e}")))?;
        let price = match dialect {
            Dialect::Postgres => Value::Text(price.to_string()),
            Dialect::Sqlite => Value::Int(price.cents()),
        };
        db.execute(
            insert_item,
            &[
                Value::from(*name),
                Value::from(*description),
                price,
                Value::Bool(*available),
                Value::Int(admin),
            ],
        )
        .await?;
    }
    Ok(())
}
