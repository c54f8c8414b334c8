//! `spin:sqlite/sqlite@3.1.0`: embedded SQLite database files by label, opened
//! under each component's `sqlite_databases` allow-list. `default` needs no
//! set-up: it is `<state_dir>/sqlite_db.db`.

mod config;
mod host;
mod state;

pub use config::databases_from_runtime_config;
pub use host::{OpenConnection, Sqlite, SqliteView};
pub use state::{SqliteDatabase, SqliteError, SqliteGrant, SqliteState};
