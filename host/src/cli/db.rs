//! `nexa db migrate` and `nexa db seed`: the two halves of what the API
//! components do to their database on first use, run explicitly, with the
//! api crate's own schema code (`nexa_api::repository::schema`) over its
//! native adapters (sqlx for Postgres, rusqlite for SQLite).
//!
//! The database is `--database`, else the one the app's components are
//! configured with: the value their `database_url` variable resolves to
//! through the runtime config's providers and the `SPIN_VARIABLE_*`
//! environment, as `nexa up` resolves it (empty: the embedded SQLite
//! `default` database in the state directory).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use nexa_api::auth::login::hash_password;
use nexa_api::repository::{schema, users};
use nexa_api::storage::native::NativeDatabase;
use nexa_api::storage::{Database, DbError, Dialect};
use serde::Serialize;

use super::AppArgs;
use crate::app::AppFiles;
use crate::capabilities::sqlite::databases_from_runtime_config;
use crate::capabilities::variables::{self, Template, VariablesState};

/// The app variable the components read their database from.
const DATABASE_URL: &str = "database_url";
/// The variable the auth component gives the seeded admin as its password,
/// and the bcrypt cost it hashes it at.
const ADMIN_PASSWORD: &str = "admin_password";
const BCRYPT_COST: &str = "bcrypt_cost";
/// bcrypt's own default, when no component declares `bcrypt_cost`.
const DEFAULT_BCRYPT_COST: u32 = 12;
/// An unreachable database fails within this long rather than hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Bring the schema to the latest version (what components do on first
    /// use, without the seed). Applies nothing when it is already there.
    Migrate(MigrateArgs),
    /// Seed an empty database (the admin account and sample items) and give
    /// the admin its password, as the auth component does on first use.
    Seed(SeedArgs),
}

/// Which database, and how to report.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// The database: postgres://… or sqlite:PATH. Default: the one the
    /// app's components use (their `database_url` variable; empty means
    /// the embedded SQLite `default` database in the state directory).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    #[command(flatten)]
    pub app: AppArgs,
    /// Print JSON instead of sentences.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    #[command(flatten)]
    pub target: Target,
    /// Read the admin's password from this environment variable. Default:
    /// the app's `admin_password` variable, as the auth component reads it.
    #[arg(long, value_name = "NAME")]
    pub admin_password_env: Option<String>,
}

/// What `nexa db migrate` did, for `--json`.
#[derive(Debug, Serialize)]
pub struct MigrateReport {
    pub database: String,
    pub dialect: &'static str,
    pub version_before: i64,
    pub version_after: i64,
    /// The migrations this run applied, in order (empty when none was due).
    pub applied: Vec<i64>,
    pub latest_version: i64,
}

/// What `nexa db seed` did, for `--json`.
#[derive(Debug, Serialize)]
pub struct SeedReport {
    pub database: String,
    pub dialect: &'static str,
    pub schema_version: i64,
    /// Whether the admin account and sample items were inserted (only into
    /// a database without users).
    pub seeded: bool,
    /// Whether this run gave the admin its password (only when it had none).
    pub admin_password_set: bool,
}

/// `nexa db …`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Migrate(args) => migrate(args).await,
        Command::Seed(args) => seed(args).await,
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let target = args.target;
    let chosen = choose_database(target.database, &target.app)?;
    let (dialect, migrated) = with_spinner(format!("migrating {}", chosen.shown), async {
        let db = open(&chosen).await?;
        let migrated = schema::migrate_schema(&db)
            .await
            .map_err(|e| anyhow!("migrating {}: {e}", chosen.shown))?;
        Ok((db.dialect(), migrated))
    })
    .await?;
    let report = MigrateReport {
        database: chosen.shown,
        dialect: dialect_name(dialect),
        version_before: migrated.version_before,
        version_after: migrated.version_after,
        applied: migrated.applied,
        latest_version: schema::latest_version(),
    };
    print(&report, target.json, describe_migration)
}

async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let target = args.target;
    let chosen = choose_database(target.database, &target.app)?;
    // The password is read and hashed only if the admin needs it.
    let password = match args.admin_password_env {
        Some(name) => PasswordSource::Environment(name),
        None => PasswordSource::App(target.app),
    };
    let (dialect, seeded, admin_password_set) = with_spinner(
        format!("seeding {}", chosen.shown),
        seed_database(&chosen, &password),
    )
    .await?;
    let report = SeedReport {
        database: chosen.shown,
        dialect: dialect_name(dialect),
        schema_version: seeded.version_after,
        seeded: seeded.seeded,
        admin_password_set,
    };
    print(&report, target.json, |report| {
        describe_seed(report, &password)
    })
}

/// Runs `work` under a spinner on stderr.
async fn with_spinner<T>(
    message: String,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let spinner = super::spinner(message);
    let outcome = work.await;
    spinner.finish_and_clear();
    outcome
}

/// Prints `report` as JSON, or in the sentences `describe` makes of it.
fn print<T: Serialize>(
    report: &T,
    json: bool,
    describe: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", describe(report));
    }
    Ok(())
}

/// Seeds, then provisions the admin's password: what the seed did, and
/// whether this run set the password.
async fn seed_database(
    chosen: &ChosenDatabase,
    password: &PasswordSource,
) -> anyhow::Result<(Dialect, schema::MigrationReport, bool)> {
    let db = open(chosen).await?;
    let seeded = schema::seed_if_empty(&db).await.map_err(|e| match e {
        DbError::Other(message) if message.starts_with("the schema is at version") => {
            anyhow!("{}: {message} (run `nexa db migrate` first)", chosen.shown)
        }
        other => anyhow!("seeding {}: {other}", chosen.shown),
    })?;
    // The hashing closure's own error, kept whole (DbError holds a string).
    let mut no_password = None;
    let provisioned = users::provision_admin_password(&db, || {
        password.hash().map_err(|error| {
            let message = format!("{error:#}");
            no_password = Some(error);
            DbError::Other(message)
        })
    })
    .await;
    if let Some(error) = no_password {
        let also = if seeded.seeded {
            "the admin account and sample items were seeded, but "
        } else {
            ""
        };
        return Err(error.context(format!(
            "{}: {also}the admin account has no password yet",
            chosen.shown
        )));
    }
    let admin_password_set = provisioned
        .map_err(|e| anyhow!("setting the admin's password in {}: {e}", chosen.shown))?;
    Ok((db.dialect(), seeded, admin_password_set))
}

/// The database a command works on.
struct ChosenDatabase {
    url: String,
    /// The URL without its password, for messages and reports.
    shown: String,
    /// Whether it is the app's embedded SQLite database, found in the
    /// state directory rather than named.
    in_state_dir: bool,
}

/// `--database`, else the app's.
fn choose_database(database: Option<String>, app: &AppArgs) -> anyhow::Result<ChosenDatabase> {
    match database {
        Some(url) => Ok(ChosenDatabase {
            shown: without_password(&url),
            url,
            in_state_dir: false,
        }),
        None => {
            let files = app.files().context(
                "finding the app's database (pass --database postgres://… or sqlite:PATH to name one)",
            )?;
            let url = AppVariables::read(&files)?.database_url()?;
            Ok(ChosenDatabase {
                shown: without_password(&url),
                in_state_dir: url.starts_with("sqlite:"),
                url,
            })
        }
    }
}

async fn open(chosen: &ChosenDatabase) -> anyhow::Result<NativeDatabase> {
    if let Some(path) = chosen.url.strip_prefix("sqlite:")
        && chosen.in_state_dir
    {
        // The state directory may not exist before the first `nexa up`.
        let path = std::path::Path::new(path.trim_start_matches("//"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, NativeDatabase::open(&chosen.url)).await {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(error)) => Err(anyhow!(
            "cannot open the database {}: {}",
            chosen.shown,
            match error {
                DbError::Unavailable(m) | DbError::Other(m) | DbError::UniqueViolation(m) => m,
            }
        )),
        Err(_) => bail!(
            "cannot open the database {}: no answer within {} s",
            chosen.shown,
            CONNECT_TIMEOUT.as_secs()
        ),
    }
}

/// The app's variables as its components get them, resolved as `nexa up`
/// resolves them (without failing on variables nobody asked for).
struct AppVariables<'a> {
    files: &'a AppFiles,
    values: VariablesState,
}

impl<'a> AppVariables<'a> {
    fn read(files: &'a AppFiles) -> anyhow::Result<Self> {
        let values = VariablesState::new(
            files.manifest.manifest.variables.clone(),
            variables::providers(&files.runtime)?,
        );
        Ok(Self { files, values })
    }

    /// The value the components that have the variable `name` get, and
    /// their ids; `None` when none has it, an error (suggesting `flag`)
    /// when they get different values.
    fn component_value(
        &self,
        name: &str,
        flag: &str,
    ) -> anyhow::Result<Option<(String, Vec<String>)>> {
        let manifest = &self.files.manifest;
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, component) in &manifest.manifest.component {
            let Some(text) = component.variables.get(name) else {
                continue;
            };
            let value = Template::parse(text)
                .map_err(anyhow::Error::from)
                .and_then(|t| Ok(t.render(|var| self.values.resolve(var))?))
                .with_context(|| {
                    format!(
                        "{}: component `{id}` variable `{name}`",
                        manifest.path.display()
                    )
                })?;
            values.entry(value).or_default().push(id.clone());
        }
        if values.len() > 1 {
            let each: Vec<String> = values.values().map(|ids| ids.join(", ")).collect();
            bail!(
                "the components' `{name}` differs ({}): pass {flag} to choose",
                each.join(" / ")
            );
        }
        Ok(values.into_iter().next())
    }

    /// The one database the components use, as a URL `NativeDatabase` opens.
    fn database_url(&self) -> anyhow::Result<String> {
        let Some((url, _)) = self.component_value(DATABASE_URL, "--database")? else {
            bail!(
                "no component of {} has a `{DATABASE_URL}` variable: pass --database postgres://… or sqlite:PATH",
                self.files.manifest.path.display()
            );
        };
        let url = url.trim();
        if !url.is_empty() {
            return Ok(url.to_string());
        }
        // Empty: the components' embedded SQLite `default` database.
        let databases = databases_from_runtime_config(&self.files.runtime, &self.files.state_dir);
        let default = databases
            .get("default")
            .context("the runtime config defines no `default` SQLite database")?;
        Ok(format!("sqlite:{}", default.path.display()))
    }

    /// The admin's password and the bcrypt cost to hash it at, as the
    /// component given `admin_password` gets them.
    fn admin_password(&self) -> anyhow::Result<(String, u32)> {
        let flag = "--admin-password-env NAME";
        let Some((password, ids)) = self.component_value(ADMIN_PASSWORD, flag)? else {
            bail!(
                "no component of {} has an `{ADMIN_PASSWORD}` variable: pass {flag}",
                self.files.manifest.path.display()
            );
        };
        let declares_cost = |id: &String| {
            self.files.manifest.manifest.component[id]
                .variables
                .contains_key(BCRYPT_COST)
        };
        let cost = match self.component_value(BCRYPT_COST, flag)? {
            Some((cost, _)) if ids.iter().any(declares_cost) => cost
                .trim()
                .parse()
                .with_context(|| format!("`{BCRYPT_COST}` is {cost:?}, not a number"))?,
            _ => DEFAULT_BCRYPT_COST,
        };
        Ok((password, cost))
    }
}

/// Where the seeded admin's password comes from.
enum PasswordSource {
    /// `--admin-password-env NAME`.
    Environment(String),
    /// The app's `admin_password` variable, as its component gets it.
    App(AppArgs),
}

impl PasswordSource {
    /// The password's bcrypt hash, as the users table stores it.
    fn hash(&self) -> anyhow::Result<String> {
        let (password, cost) = match self {
            PasswordSource::Environment(name) => {
                let password = std::env::var(name)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .with_context(|| format!("--admin-password-env {name}: ${name} is not set"))?;
                (password, DEFAULT_BCRYPT_COST)
            }
            PasswordSource::App(app) => {
                let files = app.files().context(format!(
                    "reading the app's `{ADMIN_PASSWORD}` (or pass --admin-password-env NAME)"
                ))?;
                AppVariables::read(&files)?.admin_password()?
            }
        };
        hash_password(&password, cost).map_err(|e| anyhow!("hashing the admin's password: {e}"))
    }
}

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgres",
        Dialect::Sqlite => "sqlite",
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn describe_migration(report: &MigrateReport) -> String {
    let database = &report.database;
    let latest = report.latest_version;
    if report.applied.is_empty() {
        let newer = if report.version_after > latest {
            format!(" (newer than this nexa's latest, {latest})")
        } else {
            " (the latest)".to_string()
        };
        return format!(
            "{database}: schema at version {}{newer}; no migration to apply",
            report.version_after
        );
    }
    let applied: Vec<String> = report.applied.iter().map(i64::to_string).collect();
    format!(
        "{database}: schema version {} → {}; applied migration{} {}",
        report.version_before,
        report.version_after,
        if applied.len() == 1 { "" } else { "s" },
        applied.join(", ")
    )
}

fn describe_seed(report: &SeedReport, password: &PasswordSource) -> String {
    let database = &report.database;
    let seeded = if report.seeded {
        format!(
            "{database}: seeded the admin account and {} sample items",
            schema::SEED_ITEMS.len()
        )
    } else {
        format!("{database}: not seeded: the database already has users")
    };
    let admin = if report.admin_password_set {
        match password {
            PasswordSource::Environment(name) => {
                format!("the admin's password is set (from ${name})")
            }
            PasswordSource::App(_) => {
                format!("the admin's password is set (from the app's `{ADMIN_PASSWORD}`)")
            }
        }
    } else {
        "the admin already has a password (left as it is)".to_string()
    };
    format!("{seeded}\n{admin}")
}
