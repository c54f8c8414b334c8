//! The contract check: a component may import only what the
//! `nexa:platform/http-component` world (in `wit/`) imports, and must export
//! its handler. Imports match semver-compatibly (a component built against
//! `wasi:io/poll@0.2.6` matches the world's `@0.2.12`), as wasmtime links them.

use wasmtime::Engine;
use wasmtime::component::Component;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/world_contract.rs"));
}

pub use generated::{EXPORTS, IMPORTS};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContractError {
    #[error(
        "component \"{component}\" imports `{interface}`, which is outside the Nexa world (wit/world.wit, nexa:platform/http-component); the network is reached only through the Spin interfaces and outbound HTTP"
    )]
    ForbiddenImport {
        component: String,
        interface: String,
    },
    #[error(
        "component \"{component}\" does not export `{interface}`: it is not a wasi:http 0.3 handler (build it with spin-sdk 7's #[http_service])"
    )]
    MissingExport {
        component: String,
        interface: String,
    },
}

/// Checks a compiled component's imports and exports against the world.
pub fn check(engine: &Engine, name: &str, component: &Component) -> Result<(), ContractError> {
    let ty = component.component_type();
    for (import, _) in ty.imports(engine) {
        if !allowed(import, IMPORTS) {
            return Err(ContractError::ForbiddenImport {
                component: name.to_string(),
                interface: import.to_string(),
            });
        }
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    for required in EXPORTS {
        if !exports.iter().any(|export| compatible(export, required)) {
            return Err(ContractError::MissingExport {
                component: name.to_string(),
                interface: required.to_string(),
            });
        }
    }
    Ok(())
}

fn allowed(import: &str, world: &[&str]) -> bool {
    world.iter().any(|entry| compatible(import, entry))
}

/// `ns:pkg/iface@x.y.z` names the same interface at a semver-compatible version.
fn compatible(a: &str, b: &str) -> bool {
    let (a_name, a_version) = split(a);
    let (b_name, b_version) = split(b);
    if a_name != b_name {
        return false;
    }
    match (a_version, b_version) {
        (None, None) => true,
        (Some(a), Some(b)) => match (semver::Version::parse(a), semver::Version::parse(b)) {
            (Ok(a), Ok(b)) if a.pre.is_empty() && b.pre.is_empty() => {
                a.major == b.major && (a.major != 0 || a.minor == b.minor)
            }
            _ => a == b,
        },
        _ => false,
    }
}

fn split(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_lists_what_spin_sdk_components_import() {
        for import in [
            "wasi:http/types@0.3.0",
            "spin:key-value/key-value@3.0.0",
            "spin:postgres/postgres@4.2.0",
            "wasi:io/poll@0.2.6",
            "wasi:cli/environment@0.2.0",
            "wasi:random/insecure-seed@0.2.6",
        ] {
            assert!(allowed(import, IMPORTS), "{import}");
        }
        assert_eq!(EXPORTS, ["wasi:http/handler@0.3.0"]);
    }

    #[test]
    fn sockets_and_other_versions_are_outside() {
        for import in [
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/network@0.2.0",
            "wasi:http/outgoing-handler@0.2.6",
            "spin:postgres/postgres@3.0.0",
            "fermyon:spin/key-value@2.0.0",
            "wasi:io/poll@0.3.0",
        ] {
            assert!(!allowed(import, IMPORTS), "{import}");
        }
    }
}
