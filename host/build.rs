//! Assembles the WIT the host is built against and generates code from it.
//!
//! Our own package (`wit/`) names WASI's and Spin's interfaces but does not
//! copy them. Here they are taken from the crates that publish them, found
//! through `cargo metadata`: WASI 0.2 from `wasmtime-wasi`, WASI 0.3 from
//! `wasmtime-wasi-http`, Spin's interfaces from `spin-sdk`. The assembled tree
//! lands in `$OUT_DIR/nexa-wit`, and two files are written next to it:
//!
//! - `spin_bindings.rs`: the `bindgen!` call for the Spin capabilities;
//! - `world_contract.rs`: the imports and exports of `nexa:platform/http-component`,
//!   which the host checks every component against at load time.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The Spin interfaces a Nexa component may import (dirs under spin-sdk's `wit/deps`).
const SPIN_PACKAGES: &[&str] = &[
    "spin-postgres@4.2.0",
    "spin-sqlite@3.1.0",
    "spin-key-value@3.0.0",
    "spin-redis@3.0.0",
    "spin-variables@3.0.0",
];

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let our_wit = manifest_dir.join("../wit");
    println!("cargo:rerun-if-changed={}", our_wit.display());
    println!("cargo:rerun-if-changed=build.rs");

    let packages = PackageDirs::locate(&manifest_dir)?;
    let wit_dir = out_dir.join("nexa-wit");
    assemble(&our_wit, &packages, &wit_dir)?;

    let contract = world_contract(&wit_dir)?;
    fs::write(out_dir.join("world_contract.rs"), contract)?;

    let bindings = format!(
        r#"wasmtime::component::bindgen!({{
    path: {path:?},
    world: "nexa:platform/spin-capabilities",
    imports: {{ default: async | store | trappable | tracing }},
    with: {{
        "spin:key-value/key-value.store": crate::capabilities::key_value::OpenStore,
        "spin:sqlite/sqlite.connection": crate::capabilities::sqlite::OpenConnection,
        "spin:postgres/postgres.connection": crate::capabilities::postgres::OpenPgConnection,
        "spin:postgres/postgres.connection-builder": crate::capabilities::postgres::PgConnectionBuilder,
        "spin:redis/redis.connection": crate::capabilities::redis::OpenRedisConnection,
    }},
}});
"#,
        path = wit_dir.display().to_string()
    );
    fs::write(out_dir.join("spin_bindings.rs"), bindings)?;
    Ok(())
}

/// Where cargo unpacked the crates that publish the WIT we need.
struct PackageDirs {
    spin_sdk: PathBuf,
    wasmtime_wasi: PathBuf,
    wasmtime_wasi_http: PathBuf,
}

impl PackageDirs {
    fn locate(manifest_dir: &Path) -> Result<Self> {
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        // Offline first: the build already fetched what it compiles. Crates it
        // does not compile (dev-dependencies, wasm-only ones) may be missing on
        // a fresh machine, and then cargo has to download them.
        let run = |offline: bool| -> Result<std::process::Output> {
            let mut command = Command::new(&cargo);
            command.args(["metadata", "--format-version", "1", "--manifest-path"]);
            command.arg(manifest_dir.join("Cargo.toml"));
            if offline {
                command.arg("--offline");
            }
            command.output().context("running cargo metadata")
        };
        let mut output = run(true)?;
        if !output.status.success() {
            output = run(false)?;
        }
        if !output.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let packages = metadata["packages"]
            .as_array()
            .context("cargo metadata: no packages")?;
        let find = |name: &str, major: &str| -> Result<PathBuf> {
            let package = packages
                .iter()
                .find(|p| {
                    p["name"] == name
                        && p["version"]
                            .as_str()
                            .is_some_and(|v| v.split('.').next() == Some(major))
                })
                .with_context(|| format!("cargo metadata lists no {name} {major}.x"))?;
            let manifest = package["manifest_path"]
                .as_str()
                .with_context(|| format!("{name} has no manifest_path"))?;
            Ok(Path::new(manifest)
                .parent()
                .context("manifest_path has no parent")?
                .to_path_buf())
        };
        Ok(Self {
            spin_sdk: find("spin-sdk", "7")?,
            wasmtime_wasi: find("wasmtime-wasi", "48")?,
            wasmtime_wasi_http: find("wasmtime-wasi-http", "48")?,
        })
    }
}

fn assemble(our_wit: &Path, packages: &PackageDirs, wit_dir: &Path) -> Result<()> {
    if wit_dir.exists() {
        fs::remove_dir_all(wit_dir)?;
    }
    let deps = wit_dir.join("deps");
    fs::create_dir_all(&deps)?;
    for entry in fs::read_dir(our_wit)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wit") {
            fs::copy(&path, wit_dir.join(path.file_name().context("file name")?))?;
        }
    }
    let wasi_sources = [
        ("wasi-p2", packages.wasmtime_wasi.join("src/p2/wit/deps")),
        (
            "wasi-p3",
            packages.wasmtime_wasi_http.join("src/p3/wit/deps"),
        ),
    ];
    for (prefix, dir) in wasi_sources {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().context("file name")?.to_string_lossy();
            fs::copy(&path, deps.join(format!("{prefix}-{name}")))?;
        }
    }
    for package in SPIN_PACKAGES {
        let source = packages.spin_sdk.join("wit/deps").join(package);
        let target = deps.join(package);
        fs::create_dir_all(&target)?;
        for entry in
            fs::read_dir(&source).with_context(|| format!("reading {}", source.display()))?
        {
            let path = entry?.path();
            fs::copy(&path, target.join(path.file_name().context("file name")?))?;
        }
    }
    Ok(())
}

/// Renders the interfaces `http-component` imports and exports as Rust constants.
fn world_contract(wit_dir: &Path) -> Result<String> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(wit_dir)?;
    let world = resolve.select_world(&[package], Some("http-component"))?;
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .iter()
            .filter_map(|(key, _)| match key {
                wit_parser::WorldKey::Interface(id) => resolve.id_of(*id),
                wit_parser::WorldKey::Name(_) => None,
            })
            .collect::<BTreeSet<String>>()
    };
    let world = &resolve.worlds[world];
    let imports = names(&world.imports);
    let exports = names(&world.exports);
    let list = |set: &BTreeSet<String>| {
        set.iter()
            .map(|name| format!("    {name:?},\n"))
            .collect::<String>()
    };
    Ok(format!(
        "/// Interfaces a Nexa component may import (from `wit/world.wit`, world `http-component`).\n\
         pub const IMPORTS: &[&str] = &[\n{}];\n\
         /// Interfaces a Nexa component must export.\n\
         pub const EXPORTS: &[&str] = &[\n{}];\n",
        list(&imports),
        list(&exports)
    ))
}
