//! `nexa up --watch`: when a file matching a component's `watch` globs
//! changes, run that component's build command and swap the result in live
//! (the admin API's swap, with its checks), without restarting the host or
//! touching the other components. A failed build or a refused component is
//! logged and the running version keeps serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher};

use crate::builder::{build_component, workdir_of};
use crate::config::manifest::{BuildDecl, LoadedManifest};
use crate::progress::{Lines, Progress};
use crate::server::ServerState;

/// Edits arrive as bursts (an editor's save, a `git checkout`): a rebuild
/// starts once the files have been quiet this long.
const QUIET: Duration = Duration::from_millis(300);

/// One component the watcher rebuilds.
struct Watched {
    id: String,
    build: BuildDecl,
    /// Globs are relative to here, as Spin's are.
    workdir: PathBuf,
    globs: GlobSet,
    /// The `.wasm` its build leaves (spin.toml's `source`).
    wasm: PathBuf,
}

impl Watched {
    fn matches(&self, path: &Path) -> bool {
        path.strip_prefix(&self.workdir)
            .is_ok_and(|relative| self.globs.is_match(relative))
    }
}

/// Keeps the file watcher alive; dropping it stops watching.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching the `watch` globs of every component that has a build
/// command; errors when none has any.
pub fn start(manifest: LoadedManifest, state: Arc<ServerState>) -> anyhow::Result<WatchHandle> {
    let watched = watched_components(&manifest)?;
    anyhow::ensure!(
        !watched.is_empty(),
        "--watch: no component has [component.<id>.build] with `watch` globs in {}",
        manifest.path.display()
    );
    let (events, mut changed) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
        {
            for path in event.paths {
                let _ = events.send(path);
            }
        }
    })
    .context("--watch: starting the file watcher")?;
    let roots: BTreeSet<(PathBuf, bool)> = watched
        .iter()
        .flat_map(|w| {
            w.build
                .watch
                .iter()
                .map(|glob| watch_root(&w.workdir, glob))
        })
        .collect();
    for (root, recursive) in roots {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher
            .watch(&root, mode)
            .with_context(|| format!("--watch: watching {}", root.display()))?;
    }
    for component in &watched {
        tracing::info!(
            component = %component.id,
            watch = ?component.build.watch,
            dir = %component.workdir.display(),
            "watching: a change rebuilds and swaps in this component"
        );
    }
    let manifest = Arc::new(manifest);
    let watched = Arc::new(watched);
    tokio::spawn(async move {
        while let Some(first) = changed.recv().await {
            let mut paths = vec![first];
            // Wait for the burst to end, keeping what it touched.
            loop {
                match tokio::time::timeout(QUIET, changed.recv()).await {
                    Ok(Some(path)) => paths.push(path),
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            for index in 0..watched.len() {
                if paths.iter().any(|path| watched[index].matches(path)) {
                    rebuild_and_swap(&manifest, &watched, index, &state).await;
                }
            }
        }
    });
    Ok(WatchHandle { _watcher: watcher })
}

/// The directory to watch for `glob` (relative to `workdir`): its literal
/// leading part, so a `src/**/*.rs` glob does not put inotify watches on
/// every directory under the workdir (a `target/` can hold thousands).
/// Recursive unless the glob names files of that one directory.
fn watch_root(workdir: &Path, glob: &str) -> (PathBuf, bool) {
    let is_pattern = |part: &str| part.contains(['*', '?', '[', '{']);
    let parts: Vec<&str> = glob.split('/').filter(|p| !p.is_empty()).collect();
    let literal = parts.iter().take_while(|p| !is_pattern(p)).count();
    // Everything up to the last part is a directory; a literal last part is a file.
    let dir_parts = literal.min(parts.len().saturating_sub(1));
    let mut root = workdir.to_path_buf();
    root.extend(&parts[..dir_parts]);
    let recursive = parts.len() - dir_parts > 1;
    // A directory that does not exist yet: watch what does, below it all.
    let mut recursive = recursive;
    while !root.is_dir() && root != workdir {
        root.pop();
        recursive = true;
    }
    (root, recursive)
}

fn watched_components(manifest: &LoadedManifest) -> anyhow::Result<Vec<Watched>> {
    let mut watched = Vec::new();
    for (id, decl) in &manifest.manifest.component {
        let Some(build) = decl.build.as_ref().filter(|b| !b.watch.is_empty()) else {
            continue;
        };
        let mut globs = GlobSetBuilder::new();
        for pattern in &build.watch {
            globs.add(Glob::new(pattern).with_context(|| {
                format!("component \"{id}\": watch glob {pattern:?} is not valid")
            })?);
        }
        let workdir = workdir_of(manifest, build);
        // Events carry absolute paths; match them against an absolute workdir.
        let workdir = std::fs::canonicalize(&workdir)
            .with_context(|| format!("component \"{id}\": {}", workdir.display()))?;
        watched.push(Watched {
            id: id.clone(),
            build: build.clone(),
            workdir,
            globs: globs.build()?,
            wasm: manifest.resolve(&decl.source),
        });
    }
    Ok(watched)
}

async fn rebuild_and_swap(
    manifest: &Arc<LoadedManifest>,
    watched: &Arc<Vec<Watched>>,
    index: usize,
    state: &ServerState,
) {
    let id = watched[index].id.clone();
    let (manifest, watched) = (manifest.clone(), watched.clone());
    let built = tokio::task::spawn_blocking(move || {
        let component = &watched[index];
        build_component(
            &manifest,
            &component.id,
            &component.build,
            "[watch]",
            &Progress::plain(Lines::Print),
        )?;
        std::fs::read(&component.wasm)
            .with_context(|| format!("reading the build's {}", component.wasm.display()))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|built| built);
    let wasm = match built {
        Ok(wasm) => wasm,
        Err(error) => {
            tracing::error!(component = %id, error = %format!("{error:#}"), "watch: the build failed; the running version keeps serving");
            return;
        }
    };
    match state.app.swap(&id, wasm).await {
        Ok(outcome) => {
            tracing::info!(component = %id, digest = %outcome.digest, "watch: rebuilt and swapped in")
        }
        Err(error) => {
            tracing::error!(component = %id, %error, "watch: the new build was refused; the running version keeps serving")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_literal_part_of_a_glob_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = dir.path();
        std::fs::create_dir_all(workdir.join("components/health/src")).unwrap();
        assert_eq!(
            watch_root(workdir, "components/health/src/**/*.rs"),
            (workdir.join("components/health/src"), true)
        );
        assert_eq!(
            watch_root(workdir, "components/health/Cargo.toml"),
            (workdir.join("components/health"), false)
        );
        assert_eq!(
            watch_root(workdir, "components/*/src/*.rs"),
            (workdir.join("components"), true)
        );
        assert_eq!(
            watch_root(workdir, "which.txt"),
            (workdir.to_path_buf(), false)
        );
        // Not there yet: the nearest directory that is, recursively.
        assert_eq!(
            watch_root(workdir, "components/later/src/lib.rs"),
            (workdir.join("components"), true)
        );
    }
}
