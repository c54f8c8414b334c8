//! `spin:sqlite/sqlite@3.1.0`: embedded SQLite database files by label, opened
//! under each component's `sqlite_databases` allow-list. `default` needs no
//! set-up: it is `<state_dir>/sqlite_db.db`. Guests' SQL cannot reach other
//! files ([`sandbox`]).

mod config;
mod host;
mod sandbox;
mod state;

pub use config::{DatabaseFile, SqliteDatabaseSection, databases_from_runtime_config};
pub use host::{OpenConnection, Sqlite, SqliteView};
pub use state::{SqliteDatabase, SqliteError, SqliteGrant, SqliteState};

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::bail;
use wasmtime::component::{Linker, ResourceTable};

use super::{AppContext, Capability, ComponentContext};
use crate::spin_bindings::spin;
use crate::store::StoreData;

impl Capability for Sqlite {
    const NAME: &'static str = "sqlite";
    type State = SqliteState;
    type Grant = SqliteGrant;
    type InstanceState = ();

    /// Opens the databases some component uses (and only those).
    fn build(app: &AppContext<'_>) -> anyhow::Result<SqliteState> {
        let files = databases_from_runtime_config(app.runtime, app.state_dir);
        let used: HashSet<String> = app
            .manifest
            .manifest
            .component
            .values()
            .flat_map(|component| component.sqlite_databases.iter().cloned())
            .collect();
        Ok(SqliteState::open(&files, &used)?)
    }

    fn grant(
        state: &Arc<SqliteState>,
        component: &ComponentContext<'_>,
    ) -> anyhow::Result<SqliteGrant> {
        for label in &component.decl.sqlite_databases {
            if state.database(label).is_none() {
                bail!(
                    "component \"{}\" uses SQLite database \"{label}\", which is not defined; add [sqlite_database.{label}] to the runtime config",
                    component.id
                );
            }
        }
        Ok(SqliteGrant {
            allowed: component.decl.sqlite_databases.iter().cloned().collect(),
            state: state.clone(),
        })
    }

    fn new_instance(_: &Arc<SqliteGrant>) {}

    fn view<'a>(
        table: &'a mut ResourceTable,
        grant: &'a Arc<SqliteGrant>,
        _: &'a mut (),
    ) -> SqliteView<'a> {
        SqliteView { table, grant }
    }

    fn add_to_linker(
        linker: &mut Linker<StoreData>,
        view: fn(&mut StoreData) -> SqliteView<'_>,
    ) -> wasmtime::Result<()> {
        spin::sqlite::sqlite::add_to_linker::<_, Sqlite>(linker, view)
    }
}
