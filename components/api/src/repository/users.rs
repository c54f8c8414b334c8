//! The users table: every statement for it, in both dialects.

use crate::storage::{Database, DbError, Dialect, Value};
use crate::users::{NewUser, User};

/// The stored hash of an account without a usable password: no bcrypt hash
/// looks like it, so no password verifies against it (the seeded `admin`
/// until the auth component sets its password).
pub const NO_PASSWORD: &str = "!";

const PG_COLUMNS: &str = "id, email, username, role, is_active, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
const SQLITE_COLUMNS: &str = "id, email, username, role, is_active, created_at";

fn columns(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => PG_COLUMNS,
        Dialect::Sqlite => SQLITE_COLUMNS,
    }
}

fn user(row: Vec<Value>) -> Result<User, DbError> {
    let bad = || DbError::Other(format!("unexpected user row: {row:?}"));
    let mut values = row.clone().into_iter();
    let mut next = || values.next().ok_or_else(bad);
    Ok(User {
        id: next()?.as_i64().ok_or_else(bad)?,
        email: next()?.into_text().ok_or_else(bad)?,
        username: next()?.into_text().ok_or_else(bad)?,
        role: next()?.into_text().ok_or_else(bad)?,
        is_active: next()?.as_bool().ok_or_else(bad)?,
        created_at: next()?.into_text().ok_or_else(bad)?,
    })
}

/// Why a registration was refused by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    EmailTaken,
    UsernameTaken,
    Db(DbError),
}

/// Inserts a user; a duplicate email or username (also under a race: the
/// unique constraints decide) is reported as such.
pub async fn create<D: Database>(
    db: &D,
    new: &NewUser,
    password_hash: &str,
) -> Result<User, CreateError> {
    let d = db.dialect();
    let sql = format!(
        "INSERT INTO users (email, username, hashed_password, role) VALUES ({}, {}, {}, {}) RETURNING {}",
        d.param(1),
        d.param(2),
        d.param(3),
        d.param(4),
        columns(d)
    );
    let params = [
        Value::from(new.email.as_str()),
        Value::from(new.username.as_str()),
        Value::from(password_hash),
        Value::from(new.role.as_deref().unwrap_or("user")),
    ];
    match db.query(&sql, &params).await {
        Ok(rows) => rows
            .into_iter()
            .next()
            .ok_or_else(|| CreateError::Db(DbError::Other("insert returned no row".into())))
            .and_then(|row| user(row).map_err(CreateError::Db)),
        Err(DbError::UniqueViolation(what)) if what.contains("email") => {
            Err(CreateError::EmailTaken)
        }
        Err(DbError::UniqueViolation(what)) if what.contains("username") => {
            Err(CreateError::UsernameTaken)
        }
        Err(e) => Err(CreateError::Db(e)),
    }
}

pub async fn get<D: Database>(db: &D, id: i64) -> Result<Option<User>, DbError> {
    let d = db.dialect();
    let sql = format!("SELECT {} FROM users WHERE id = {}", columns(d), d.param(1));
    db.query(&sql, &[Value::Int(id)])
        .await?
        .into_iter()
        .next()
        .map(user)
        .transpose()
}

/// A user and their password hash, for logging in.
pub async fn by_username<D: Database>(
    db: &D,
    username: &str,
) -> Result<Option<(User, String)>, DbError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT {}, hashed_password FROM users WHERE username = {}",
        columns(d),
        d.param(1)
    );
    let Some(mut row) = db
        .query(&sql, &[Value::from(username)])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let hash = row.pop().and_then(Value::into_text).unwrap_or_default();
    Ok(Some((user(row)?, hash)))
}

pub async fn list<D: Database>(db: &D, skip: i64, limit: i64) -> Result<Vec<User>, DbError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT {} FROM users ORDER BY id LIMIT {} OFFSET {}",
        columns(d),
        d.param(1),
        d.param(2)
    );
    db.query(&sql, &[Value::Int(limit), Value::Int(skip)])
        .await?
        .into_iter()
        .map(user)
        .collect()
}

/// Gives the seeded `admin` account its password, if it has none yet:
/// `admin_password_hash` is asked for (a bcrypt hash costs time) only then.
/// The update is conditional, so of concurrent callers one sets it and the
/// others change nothing; an admin password set before is never replaced.
/// Returns whether this call set it.
pub async fn provision_admin_password<D: Database>(
    db: &D,
    admin_password_hash: impl FnOnce() -> Result<String, DbError>,
) -> Result<bool, DbError> {
    let d = db.dialect();
    let unset = format!(
        "username = 'admin' AND role = 'admin' AND hashed_password = {}",
        d.param(1)
    );
    let waiting = db
        .query(
            &format!("SELECT id FROM users WHERE {unset}"),
            &[Value::from(NO_PASSWORD)],
        )
        .await?;
    if waiting.is_empty() {
        return Ok(false);
    }
    let changed = db
        .execute(
            &format!(
                "UPDATE users SET hashed_password = {}, updated_at = {} WHERE {}",
                d.param(2),
                d.now(),
                unset
            ),
            &[
                Value::from(NO_PASSWORD),
                Value::Text(admin_password_hash()?),
            ],
        )
        .await?;
    Ok(changed > 0)
}
