use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config::DatabaseFile;
use super::sandbox;

/// Idle connections kept per database for the next `open`.
const MAX_IDLE_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    #[error("sqlite database {label:?}: cannot open {path}: {message}")]
    Open {
        label: String,
        path: PathBuf,
        message: String,
    },
}

/// One database file and its idle connections. Shared by every instance.
///
/// Why not `r2d2_sqlite` or `deadpool-sqlite`: a guest's `connection` is a
/// resource it may hold for the whole request and use from several host calls,
/// so what we need is "take one, give it back when the handle drops, unless it
/// was left inside a transaction". r2d2's `get` blocks a thread when the pool
/// is empty (wrong inside an async host call), and both would add a
/// per-checkout recycle query that SQLite does not need: an idle list under a
/// mutex is the whole of it. Statements still run on the blocking pool.
pub struct SqliteDatabase {
    file: DatabaseFile,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteDatabase {
    fn new(label: &str, file: &DatabaseFile) -> Result<Self, SqliteError> {
        let database = Self {
            file: file.clone(),
            idle: Mutex::new(Vec::new()),
        };
        // Open once now so a bad path stops start-up rather than the first request.
        let connection = database.connect().map_err(|e| SqliteError::Open {
            label: label.to_string(),
            path: file.path.clone(),
            message: e.to_string(),
        })?;
        database.release(connection);
        Ok(database)
    }

    /// A new connection: no URI filenames, the host's journal mode, then the
    /// guest's sandbox (see [`sandbox`]).
    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        if let Some(dir) = self.file.path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let connection = rusqlite::Connection::open_with_flags(
            &self.file.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        sandbox::install(&connection, self.file.allow_attach_file);
        Ok(connection)
    }

    /// A connection for one guest `connection`: an idle one, or a new one.
    pub fn acquire(&self) -> rusqlite::Result<rusqlite::Connection> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(connection) => Ok(connection),
            None => self.connect(),
        }
    }

    /// Takes a connection back when the guest drops its handle. A connection
    /// left inside a transaction is closed instead of reused.
    pub fn release(&self, connection: rusqlite::Connection) {
        if !connection.is_autocommit() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(connection);
        }
    }
}

/// The databases of an app, built once: only those some component uses.
#[derive(Default)]
pub struct SqliteState {
    databases: HashMap<String, Arc<SqliteDatabase>>,
}

impl SqliteState {
    pub fn open(
        files: &BTreeMap<String, DatabaseFile>,
        used: &HashSet<String>,
    ) -> Result<Self, SqliteError> {
        let mut databases = HashMap::new();
        for label in used {
            if let Some(file) = files.get(label) {
                databases.insert(label.clone(), Arc::new(SqliteDatabase::new(label, file)?));
            }
        }
        Ok(Self { databases })
    }

    pub fn database(&self, label: &str) -> Option<Arc<SqliteDatabase>> {
        self.databases.get(label).cloned()
    }
}

/// What one component may open.
pub struct SqliteGrant {
    pub allowed: HashSet<String>,
    pub state: Arc<SqliteState>,
}
