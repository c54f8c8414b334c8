//! `nexa`: run a Spin app's components on the Nexa host.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nexa_host::admin::{ADMIN_TOKEN_ENV, AdminListen, AdminToken, DEFAULT_ADMIN_LISTEN};
use nexa_host::app::{App, AppOptions};
use nexa_host::config::manifest::LoadedManifest;
use nexa_host::telemetry::logs::LogFile;
use nexa_host::telemetry::traces::Tracing;

#[derive(Parser)]
#[command(
    name = "nexa",
    version,
    about = "Serve a Spin app's WebAssembly components with pooled backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the app from spin.toml and serve it over HTTP.
    Up {
        /// The app manifest.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
        /// Spin runtime config (key-value stores, SQLite databases, variable providers).
        #[arg(long, env = "NEXA_RUNTIME_CONFIG_FILE")]
        runtime_config_file: Option<PathBuf>,
        /// Host-only settings (limits, timeouts). Default: nexa.toml beside the manifest, if any.
        #[arg(long, env = "NEXA_HOST_CONFIG_FILE")]
        host_config_file: Option<PathBuf>,
        /// Where embedded stores and the artifact cache live. Default: .spin beside the manifest.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000", env = "SPIN_HTTP_LISTEN_ADDR")]
        listen: SocketAddr,
        /// Address of the admin listener (`/metrics`), or `off`. Default:
        /// nexa.toml's `admin_listen`, else 127.0.0.1:9464.
        #[arg(long, env = "NEXA_ADMIN_LISTEN")]
        admin_listen: Option<AdminListen>,
        /// Run the components' build commands first.
        #[arg(long)]
        build: bool,
        /// Rebuild a component when files matching its `watch` globs change
        /// and swap it in live (no restart; other components untouched).
        #[arg(long)]
        watch: bool,
    },
    /// Run each component's build command.
    Build {
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
    },
    /// The components of a running host (through its admin API), or a
    /// .wasm file checked against the Nexa world.
    Components {
        #[command(subcommand)]
        command: ComponentsCommand,
    },
    /// How a running host is doing: health, and per component the version,
    /// live instances, request rate, p99 and error ratio.
    Status(nexa_host::cli::status::Args),
    /// Make a running host re-read spin.toml and the runtime config: what
    /// changed is applied at once, or nothing and the reason.
    Reload(nexa_host::cli::reload::Args),
    /// Load an HTTP endpoint: closed loop or fixed rate, latency
    /// percentiles, `--compare` two targets.
    Bench(nexa_host::cli::bench::Args),
    /// Check a component's imports and exports against the Nexa world
    /// (the same as `nexa components check`).
    CheckComponent {
        /// The component's .wasm file.
        wasm: PathBuf,
    },
    /// Audit the deployment's settings (secrets, CORS, outbound hosts,
    /// registration, limits, Compose services) from its files; exit 1 on findings.
    CheckConfig(nexa_host::cli::check_config::Args),
    /// Draw routes → components → capabilities → backends from the app's
    /// files, as Mermaid, DOT, SVG or JSON.
    Graph(nexa_host::cli::graph::Args),
    /// Read (or follow, -F) the host's JSON log, filtered by component,
    /// level, request id, trace id or time.
    Logs(nexa_host::cli::logs::Args),
    /// Run the app database's schema migrations or its seed explicitly
    /// (the components also run them on first use).
    Db {
        #[command(subcommand)]
        command: nexa_host::cli::db::Command,
    },
    /// Reach the Postgres, Redis, OTLP endpoint and Prometheus the app is
    /// configured with: latency, or the cause of the failure.
    Doctor(nexa_host::cli::doctor::Args),
    /// Each SLO's compliance, error budget left, burn rates and firing
    /// alerts, from Prometheus.
    Slo(nexa_host::cli::slo::Args),
    /// Recent traces from Jaeger (count, error ratio, p95, slowest
    /// operations), or one trace's span tree with its critical path.
    Traces(nexa_host::cli::traces::Args),
    /// GET a URL; exit 0 on a 2xx answer, 1 otherwise (a container
    /// HEALTHCHECK: `nexa probe http://127.0.0.1:9464/readyz`).
    Probe(nexa_host::cli::probe::Args),
}

#[derive(Subcommand)]
enum ComponentsCommand {
    /// List the host's components: routes, digest, size, requests served,
    /// live instances, when loaded.
    List {
        #[command(flatten)]
        admin: nexa_host::cli::AdminArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Swap in a new version of a component, live: requests in flight
    /// finish on the old one.
    Swap {
        /// The component's id in spin.toml.
        id: String,
        /// The new version's .wasm file.
        wasm: PathBuf,
        #[command(flatten)]
        admin: nexa_host::cli::AdminArgs,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Serve the version before the current one again.
    Rollback {
        /// The component's id in spin.toml.
        id: String,
        #[command(flatten)]
        admin: nexa_host::cli::AdminArgs,
        /// Print JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
    /// Check a .wasm file's imports and exports against the Nexa world (wit/world.wit).
    Check {
        /// The component's .wasm file.
        wasm: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    nexa_host::cli::run_process(|cli: Cli| run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up {
            manifest,
            runtime_config_file,
            host_config_file,
            state_dir,
            listen,
            admin_listen,
            build,
            watch,
        } => {
            let watching = if watch {
                Some(LoadedManifest::load(&manifest)?)
            } else {
                None
            };
            if build {
                let loaded = LoadedManifest::load(&manifest)?;
                tokio::task::spawn_blocking(move || nexa_host::builder::build_all(&loaded))
                    .await??;
            }
            let started = std::time::Instant::now();
            match Tracing::start_from_env()? {
                Some(tracing) => tracing::info!(
                    endpoint = %tracing.endpoint,
                    protocol = tracing.protocol.as_str(),
                    "tracing on: spans are exported over OTLP"
                ),
                None => {
                    tracing::info!("tracing off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans)")
                }
            }
            let app = App::load(&AppOptions {
                manifest,
                runtime_config: runtime_config_file,
                host_config: host_config_file,
                state_dir,
            })
            .await?;
            let log_file = LogFile::path_in(&app.state_dir);
            match LogFile::open(&log_file) {
                Ok(()) => tracing::info!(path = %log_file.display(), "logging to file"),
                Err(error) => {
                    LogFile::disable();
                    tracing::warn!(path = %log_file.display(), %error, "cannot write the log file; logging to stderr only");
                }
            }
            let trace_shutdown = app.host.trace_shutdown_timeout();
            let admin_listen = match admin_listen {
                Some(admin) => admin,
                None => app
                    .host
                    .admin_listen
                    .as_deref()
                    .unwrap_or(DEFAULT_ADMIN_LISTEN)
                    .parse()
                    .map_err(anyhow::Error::msg)?,
            };
            let admin = match admin_listen {
                AdminListen::Off => None,
                AdminListen::At(address) => Some(
                    tokio::net::TcpListener::bind(address)
                        .await
                        .with_context(|| format!("binding the admin listener to {address}"))?,
                ),
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let address = listener.local_addr()?;
            let (name, components) = (app.name.clone(), app.serving().components.len());
            match nexa_host::edge::listener::raise_open_file_limit() {
                Ok(limit) => tracing::info!(open_files = limit, "open-file limit"),
                Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
            }
            let state = nexa_host::server::ServerState::new(app)?;
            // The admin address is printed before "Serving": whoever waits for
            // that line can read both.
            match admin {
                Some(admin) => {
                    let admin_address = admin.local_addr()?;
                    let token = AdminToken::configured(&state.app.host)?;
                    if token.is_some() {
                        tracing::info!(
                            "admin listener on http://{admin_address} (/metrics; /admin/ with the admin token)"
                        );
                    } else {
                        tracing::info!(
                            "admin listener on http://{admin_address} (/metrics; /admin/ off: set {ADMIN_TOKEN_ENV} or admin_token_file to turn it on)"
                        );
                    }
                    nexa_host::telemetry::logs::print(&format!("Admin http://{admin_address}"));
                    tokio::spawn(nexa_host::admin::serve(admin, state.clone(), token));
                }
                None => tracing::info!("admin listener off"),
            }
            let _watch = match watching {
                Some(loaded) => Some(nexa_host::watch::start(loaded, state.clone())?),
                None => None,
            };
            tracing::info!(
                app = %name,
                components,
                startup_ms = started.elapsed().as_millis() as u64,
                "serving on http://{address}"
            );
            nexa_host::telemetry::logs::print(&format!("Serving http://{address}"));
            let served = nexa_host::server::serve(state, listener).await;
            Tracing::shutdown(trace_shutdown).await;
            served
        }
        Command::Build { manifest } => {
            let loaded = LoadedManifest::load(&manifest)?;
            tokio::task::spawn_blocking(move || nexa_host::builder::build_all(&loaded)).await?
        }
        Command::Components { command } => match command {
            ComponentsCommand::List { admin, json } => {
                nexa_host::cli::components::list(&admin.url, json).await
            }
            ComponentsCommand::Swap {
                id,
                wasm,
                admin,
                json,
            } => nexa_host::cli::components::change(&admin.url, &id, Some(&wasm), json).await,
            ComponentsCommand::Rollback { id, admin, json } => {
                nexa_host::cli::components::change(&admin.url, &id, None, json).await
            }
            ComponentsCommand::Check { wasm } => check_component(&wasm),
        },
        Command::Status(args) => nexa_host::cli::status::run(args).await,
        Command::Reload(args) => nexa_host::cli::reload::run(args).await,
        Command::CheckComponent { wasm } => check_component(&wasm),
        Command::CheckConfig(args) => nexa_host::cli::check_config::run(args).await,
        Command::Graph(args) => nexa_host::cli::graph::run(args).await,
        Command::Logs(args) => nexa_host::cli::logs::run(args).await,
        Command::Db { command } => nexa_host::cli::db::run(command).await,
        Command::Bench(args) => nexa_host::cli::bench::run(args).await,
        Command::Doctor(args) => nexa_host::cli::doctor::run(args).await,
        Command::Slo(args) => nexa_host::cli::slo::run(args).await,
        Command::Traces(args) => nexa_host::cli::traces::run(args).await,
        Command::Probe(args) => nexa_host::cli::probe::run(args).await,
    }
}

/// `nexa components check FILE` (and its alias `nexa check-component`).
fn check_component(wasm: &std::path::Path) -> anyhow::Result<()> {
    let engine = nexa_host::engine::build_engine(&Default::default())?;
    let name = wasm
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| wasm.display().to_string());
    let component = wasmtime::component::Component::from_file(&engine, wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("loading {}", wasm.display()))?;
    nexa_host::contract::check(&engine, &name, &component)?;
    println!(
        "{}: ok (imports within nexa:platform/http-component)",
        wasm.display()
    );
    Ok(())
}
