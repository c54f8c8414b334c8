//! `nexa build`: runs each component's `[component.<id>.build] command`, as
//! `spin build` does (through the shell, in the manifest's directory or the
//! component's `workdir`), with progress output.

use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::manifest::LoadedManifest;

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
        let workdir = match &build.workdir {
            Some(dir) => manifest.resolve(dir),
            None => manifest.dir.clone(),
        };
        for line in build.command.lines() {
            eprintln!("[{}/{total}] Building component {id}: {line}", index + 1);
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
                "[{}/{total}] Built {id} in {:.1}s",
                index + 1,
                component_started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "Finished building {total} component(s) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
