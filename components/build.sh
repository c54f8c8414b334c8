#!/bin/sh
# Builds one component crate for wasm32-wasip2 and leaves its .wasm at
# components/<crate>/<crate>.wasm (the path spin.toml's `source` names),
# wherever cargo's target directory is (CI keeps it outside the clone).
set -eu
crate="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
# The wasm-release profile (Cargo.toml): LTO and one codegen unit.
cargo build --quiet --manifest-path "$root/Cargo.toml" --target wasm32-wasip2 --profile wasm-release -p "$crate"
target_dir="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
artifact="$(printf '%s' "$crate" | tr - _).wasm"
# Copy, then rename into place: a host reading the .wasm meanwhile (another
# build or test running in parallel) sees the old file or the new, never half.
dest="$root/components/$crate/$crate.wasm"
cp "$target_dir/wasm32-wasip2/wasm-release/$artifact" "$dest.$$.tmp"
mv -f "$dest.$$.tmp" "$dest"
