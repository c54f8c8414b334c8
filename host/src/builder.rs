//! `nexa build`: runs each component's `[component.<id>.build] command`, as
//! `spin build` does (through the shell, in the manifest's directory or the
//! component's `workdir`), with progress output.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::config::manifest::{BuildDecl, LoadedManifest};
use crate::progress::{Lines, Progress};

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
    let progress = Progress::new(total as u64, "Building", Lines::Print);
    for (index, (id, build)) in to_build.into_iter().enumerate() {
        build_component(
            manifest,
            id,
            build,
            &format!("[{}/{total}]", index + 1),
            &progress,
        )?;
        progress.inc();
    }
    drop(progress);
    eprintln!(
        "Finished building {total} component(s) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs one component's build command, line by line, through the shell in
/// its working directory; `step` prefixes what it says. The commands' output
/// goes through `progress`, above its bar.
pub fn build_component(
    manifest: &LoadedManifest,
    id: &str,
    build: &BuildDecl,
    step: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    let workdir = workdir_of(manifest, build);
    for line in build.command.lines() {
        progress.start(format!("{step} Building component {id}: {line}"));
        let started = Instant::now();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("component \"{id}\": starting `{line}`"))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        std::thread::scope(|scope| {
            scope.spawn(|| forward_lines(stdout, progress));
            forward_lines(stderr, progress);
        });
        let status = child
            .wait()
            .with_context(|| format!("component \"{id}\": waiting for `{line}`"))?;
        if !status.success() {
            bail!(
                "component \"{id}\": build command `{line}` failed ({status}) in {}",
                workdir.display()
            );
        }
        progress.println(format!(
            "{step} Built {id} in {:.1}s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}

/// Passes a child's output on, line by line, until it closes.
fn forward_lines(output: Option<impl Read>, progress: &Progress) {
    let Some(output) = output else { return };
    for line in BufReader::new(output).split(b'\n') {
        let Ok(line) = line else { return };
        progress.println(String::from_utf8_lossy(&line));
    }
}

/// Where a component's build runs: its `workdir`, else the manifest's directory.
pub fn workdir_of(manifest: &LoadedManifest, build: &BuildDecl) -> PathBuf {
    match &build.workdir {
        Some(dir) => manifest.resolve(dir),
        None => manifest.dir.clone(),
    }
}
