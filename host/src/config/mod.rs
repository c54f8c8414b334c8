//! The three configuration files the host reads, each a plain struct that
//! refuses unknown keys:
//!
//! - [`manifest`]: the `spin.toml` Spin reads (manifest v2, the subset Nexa serves);
//! - [`runtime`]: Spin's runtime-config format (`--runtime-config-file`);
//! - [`host`]: `nexa.toml`, host-only settings that Spin would reject.

pub mod host;
pub mod manifest;
pub mod runtime;

use std::path::{Path, PathBuf};

/// A configuration file that could not be used. The message names the file
/// and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Reads and parses a TOML file, reporting unknown keys and type errors with
/// the file name, the key path and the line.
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_toml(path, &text)
}

pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let message = error.message().trim().to_string();
        ConfigError::invalid(
            path,
            match error.span() {
                Some(span) => format!("{}: {message}", locate(text, span.start)),
                None => message,
            },
        )
    })
}

/// "line N, key `name` in [table]": where an error is, named as the file
/// names it. Only the key is quoted, never the value (it may be a secret).
fn locate(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_number = text[..offset].matches('\n').count() + 1;
    let line = text.lines().nth(line_number - 1).unwrap_or_default().trim();
    let mut place = format!("line {line_number}");
    if let Some((key, _)) = line.split_once('=')
        && !line.starts_with('[')
    {
        place.push_str(&format!(", key `{}`", key.trim()));
        let table = text[..offset]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['));
        if let Some(table) = table {
            place.push_str(&format!(" in {table}"));
        }
    }
    place
}
