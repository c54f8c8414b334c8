//! `nexa build`: runs each component's `[component.<id>.build] command`, as
//! `spin build` does (through the shell, in the manifest's directory or the
//! component's `workdir`), with progress output.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::manifest::{BuildDecl, LoadedManifest};

/// Builds every component that has a build command, in manifest order.
pub fn build_all(manifest: &LoadedManifest) -> anyhow::Result<()> {
    let to_build: Vec<_> = manifest
        .manifest
        .component
        .iter()
        .filter_map(|(id, decl)| decl.build.as_ref().map(|build| (id, build)))
        .collect();
    if to_build.is_empty() {
        eprintln!("Nothing to build: no component has a [component.<id>.build] command.");
        return Ok(());
    }
    let started = Instant::now();
    let total = to_build.len();
    for (index, (id, build)) in to_build.into_iter().enumerate() {
        build_component(manifest, id, build, &format!("[{}/{total}]", index + 1))?;
    }
    eprintln!(
        "Finished building {total} component(s) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs one component's build command, line by line, through the shell in
/// its working directory; `progress` prefixes what it prints.
pub fn build_component(
    manifest: &LoadedManifest,
    id: &str,
    build: &BuildDecl,
    progress: &str,
) -> anyhow::Result<()> {
    let workdir = workdir_of(manifest, build);
    for line in build.command.lines() {
        eprintln!("{progress} Building component {id}: {line}");
        let component_started = Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("component \"{id}\": starting `{line}`"))?;
        if !status.success() {
            bail!(
                "component \"{id}\": build command `{line}` failed ({status}) in {}",
                workdir.display()
            );
        }
        eprintln!(
            "{progress} Built {id} in {:.1}s",
            component_started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Where a component's build runs: its `workdir`, else the manifest's directory.
pub fn workdir_of(manifest: &LoadedManifest, build: &BuildDecl) -> PathBuf {
    match &build.workdir {
        Some(dir) => manifest.resolve(dir),
        None => manifest.dir.clone(),
    }
}
