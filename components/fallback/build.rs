//! Embeds the dashboard: every file of `frontend/dist` (built by
//! `frontend/build.sh`) plus the OpenAPI document, each with gzip and brotli
//! forms made here once, so serving one is a table lookup.
//!
//! A file whose gzip form saves something is embedded compressed only (gzip
//! and, when it saves something too, brotli): the rare client that accepts
//! neither gets it inflated from the gzip form (see `site::Embedded`). That
//! keeps the identity copy, the largest of the three, out of the wasm.
//!
//! For wasm32 a missing `frontend/dist` stops the build with the command that
//! makes it; native builds (lints, and unit tests of the serving rules, which
//! use their own table) get an empty table.
//!
//! `frontend/dist/csp-connect-src.txt` (written by vite.config.ts: the trace
//! collector's origin, or nothing) is not served: it becomes `connect-src.txt`,
//! the sources the dashboard's Content-Security-Policy adds to `connect-src`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use sha2::{Digest, Sha256};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir.join("../..");
    let dist = root.join("frontend/dist");
    let openapi = root.join("components/api/openapi.json");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", dist.display());
    println!("cargo:rerun-if-changed={}", openapi.display());

    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut connect_src = String::new();
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        // Native builds only lint and unit-test the rules; nothing to embed.
    } else if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
        files.retain(|(url_path, _)| url_path != CONNECT_SRC_FILE);
        files.push(("/openapi.json".to_string(), openapi));
        connect_src = connect_sources(&dist.join(&CONNECT_SRC_FILE[1..]));
    } else {
        panic!(
            "frontend/dist/index.html is missing: build the dashboard first with \
             `sh frontend/build.sh` (npm ci + vite build), or build this component through \
             spin.toml's build command (`nexa build` / `spin build`)"
        );
    }
    files.sort();

    let mut table = String::from("&[\n");
    for (index, (url_path, file)) in files.iter().enumerate() {
        let bytes = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let content_type = content_type(url_path);
        let etag = hex(&Sha256::digest(&bytes)[..12]);
        let embed = |suffix: &str, data: &[u8]| -> String {
            let path = out_dir.join(format!("asset-{index}{suffix}"));
            fs::write(&path, data).expect("write asset");
            format!("include_bytes!({:?})", path.display().to_string())
        };
        // A compressed form is only worth having when it saves something real.
        let worth = |data: &[u8]| compressible(content_type) && data.len() + 64 < bytes.len();
        let gzip = gzip(&bytes);
        let embedded = if worth(&gzip) {
            format!("Embedded::Gzip({})", embed(".gz", &gzip))
        } else {
            format!("Embedded::Identity({})", embed("", &bytes))
        };
        let brotli = brotli(&bytes);
        let brotli = if worth(&brotli) {
            format!("Some({})", embed(".br", &brotli))
        } else {
            "None".to_string()
        };
        writeln!(
            table,
            "    Asset {{ path: {url_path:?}, content_type: {content_type:?}, etag: {etag:?}, \
             embedded: {embedded}, brotli: {brotli} }},"
        )
        .expect("write to string");
    }
    table.push(']');
    fs::write(out_dir.join("assets.rs"), table).expect("write assets.rs");
    fs::write(out_dir.join("connect-src.txt"), connect_src).expect("write connect-src.txt");
}

/// Where vite.config.ts writes the dashboard's extra `connect-src` sources.
const CONNECT_SRC_FILE: &str = "/csp-connect-src.txt";

/// The sources in `file`, one space between them (none if a build older than
/// the file has no such file). Each must be an http(s) origin: anything else
/// could end the directive or the policy early.
fn connect_sources(file: &Path) -> String {
    let Ok(text) = fs::read_to_string(file) else {
        return String::new();
    };
    let sources: Vec<&str> = text.split_whitespace().collect();
    for source in &sources {
        let origin = source
            .strip_prefix("https://")
            .or_else(|| source.strip_prefix("http://"));
        let valid = origin.is_some_and(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        });
        assert!(
            valid,
            "{}: {source:?} is not an http(s) origin; rebuild the dashboard with \
             `sh frontend/build.sh`",
            file.display()
        );
    }
    sources.join(" ")
}

/// Every file under `dir` as (`/relative/path`, file).
fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            let relative = path.strip_prefix(base).expect("under base");
            let url: Vec<_> = relative.iter().map(|c| c.to_string_lossy()).collect();
            out.push((format!("/{}", url.join("/")), path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("brotli in memory");
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
