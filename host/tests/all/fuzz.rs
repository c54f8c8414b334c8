//! Property tests of what reads untrusted or hand-written input: the
//! spin.toml and runtime-config parsers, the route matcher and the bearer
//! tokens the rate limiter reads. Stable Rust only (cargo-fuzz needs
//! nightly), so `proptest`, with a fixed number of cases per property to
//! bound the time; failing inputs are kept in `host/tests/all/fuzz.txt`
//! (proptest's regression file) and replayed first on every run.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use nexa_host::config::manifest::LoadedManifest;
use nexa_host::config::runtime::LoadedRuntimeConfig;
use nexa_host::edge::rate_limit::SubjectVerifier;
use nexa_host::routes::RouteTable;

use crate::support::repo_root;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/all/fuzz.txt",
        ))),
        ..Config::default()
    }
}

/// One edit of a text: delete, insert or replace a short run of characters.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Replace { at: usize, len: usize, text: String },
}

fn edit() -> impl Strategy<Value = Edit> {
    // Text that means something to TOML as well as plain noise.
    let text = prop_oneof![
        Just("=".to_string()),
        Just("[".to_string()),
        Just("]]".to_string()),
        Just("\"".to_string()),
        Just("\n".to_string()),
        Just("{ private = true }".to_string()),
        Just("[[trigger.http]]\nroute = \"/x/...\"\ncomponent = \"nope\"\n".to_string()),
        Just("[component.Bad_Id]\nsource = \"x.wasm\"\n".to_string()),
        "[ -~]{0,12}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 1..20usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), text.clone()).prop_map(|(at, text)| Edit::Insert { at, text }),
        (any::<usize>(), 1..10usize, text).prop_map(|(at, len, text)| Edit::Replace {
            at,
            len,
            text
        }),
    ]
}

/// `text` with `edits` applied, each at a char boundary.
fn apply(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_string();
    for edit in edits {
        let boundary = |at: usize, text: &str| {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        };
        let end = |at: usize, len: usize, text: &str| boundary((at + len).min(text.len()), text);
        match edit {
            Edit::Delete { at, len } => {
                let at = boundary(*at, &text);
                let end = end(at, *len, &text);
                text.replace_range(at..end, "");
            }
            Edit::Insert { at, text: insert } => {
                let at = boundary(*at, &text);
                text.insert_str(at, insert);
            }
            Edit::Replace {
                at,
                len,
                text: replacement,
            } => {
                let at = boundary(*at, &text);
                let end = end(at, *len, &text);
                text.replace_range(at..end, replacement);
            }
        }
    }
    text
}

/// Writes `text` as `name` in a fresh directory and loads it with `load`.
fn load_file<T, E: std::fmt::Display>(
    name: &str,
    text: &str,
    load: impl Fn(&Path) -> Result<T, E>,
) -> (tempfile::TempDir, Result<T, String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let loaded = load(&path).map_err(|e| e.to_string());
    (dir, loaded)
}

proptest! {
    #![proptest_config(config(1500))]

    /// A damaged spin.toml is refused with the file named, never a panic;
    /// whatever loads also builds a route table or is refused by it.
    #[test]
    fn spin_toml_edits_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let original = std::fs::read_to_string(repo_root().join("spin.toml")).unwrap();
        let text = apply(&original, &edits);
        let (_dir, loaded) = load_file("spin.toml", &text, LoadedManifest::load);
        match loaded {
            Ok(manifest) => {
                let _ = RouteTable::build(&manifest);
            }
            Err(message) => prop_assert!(message.contains("spin.toml"), "{}", message),
        }
    }

    /// The same for the runtime config; a loaded one says where it came from.
    #[test]
    fn runtime_config_edits_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let original =
            std::fs::read_to_string(repo_root().join("runtime-config.redis.example.toml")).unwrap();
        let text = apply(&original, &edits);
        let (_dir, loaded) = load_file("rc.toml", &text, LoadedRuntimeConfig::load);
        if let Err(message) = loaded {
            prop_assert!(message.contains("rc.toml"), "{}", message);
        }
    }
}

/// Path segments from a small alphabet, so routes and paths meet often.
fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "items", "x1"]).prop_map(str::to_string)
}

fn segments(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(segment(), 0..max)
}

/// A route: its segments and whether it ends in `/...`.
fn routes() -> impl Strategy<Value = Vec<(Vec<String>, bool)>> {
    prop::collection::vec((segments(3), any::<bool>()), 1..6)
}

/// Spin's rule, written plainly: an exact route equal to the path wins;
/// else the wildcard route with the longest prefix of whole segments.
fn expected_route(routes: &[(String, bool)], path: &str) -> Option<String> {
    if let Some((route, _)) = routes.iter().find(|(route, wildcard)| {
        !wildcard && {
            let exact = if route.is_empty() {
                "/"
            } else {
                route.as_str()
            };
            exact == path
        }
    }) {
        return Some(route.clone());
    }
    routes
        .iter()
        .filter(|(prefix, wildcard)| {
            *wildcard
                && (prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/")))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(prefix, _)| format!("{prefix}/..."))
}

proptest! {
    #![proptest_config(config(400))]

    /// The matcher picks what Spin's rule picks, for every path.
    #[test]
    fn routes_match_as_spin_matches(
        routes in routes(),
        paths in prop::collection::vec(segments(4), 1..8),
    ) {
        // Distinct routes (a duplicate is refused, tested elsewhere).
        let mut declared: Vec<(String, bool)> = Vec::new();
        for (segments, wildcard) in routes {
            let prefix: String = segments.iter().map(|s| format!("/{s}")).collect();
            if !declared.contains(&(prefix.clone(), wildcard)) {
                declared.push((prefix, wildcard));
            }
        }
        let mut manifest = String::from("spin_manifest_version = 2\n[application]\nname = \"fuzz\"\n");
        for (index, (prefix, wildcard)) in declared.iter().enumerate() {
            let route = match (prefix.is_empty(), wildcard) {
                (_, true) => format!("{prefix}/..."),
                (true, false) => "/".to_string(),
                (false, false) => prefix.clone(),
            };
            manifest.push_str(&format!(
                "[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"c{index}\"\n[component.c{index}]\nsource = \"c.wasm\"\n"
            ));
        }
        let (_dir, loaded) = load_file("spin.toml", &manifest, LoadedManifest::load);
        let table = RouteTable::build(&loaded.unwrap()).unwrap();
        for segments in paths {
            let path: String = if segments.is_empty() {
                "/".to_string()
            } else {
                segments.iter().map(|s| format!("/{s}")).collect()
            };
            let matched = table.route(&path).map(|m| m.route().to_string());
            let expected = expected_route(&declared, &path).map(|r| {
                if r.is_empty() { "/".to_string() } else { r }
            });
            prop_assert_eq!(matched, expected, "path {} in {:?}", path, declared);
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Whatever `Authorization` says, the rate limiter reads a subject only
    /// from a token signed with the app's key: never a panic, and a token
    /// changed anywhere is no one's.
    #[test]
    fn only_signed_tokens_name_a_subject(
        header in any::<String>(),
        flip in any::<usize>(),
    ) {
        let verifier = SubjectVerifier::new("a-secret-of-the-app", Some("nexa"), Some("nexa-api")).unwrap();
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(&header) {
            headers.insert(http::header::AUTHORIZATION, value);
            prop_assert_eq!(verifier.subject(&headers), None);
        }
        let claims = serde_json::json!({
            "sub": "42", "iss": "nexa", "aud": "nexa-api", "exp": 4_102_444_800u64
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"a-secret-of-the-app"),
        )
        .unwrap();
        let bearer = |token: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            headers
        };
        prop_assert_eq!(verifier.subject(&bearer(&token)), Some("42".to_string()));
        // One character changed (to another base64url character).
        let mut bytes = token.clone().into_bytes();
        let at = flip % bytes.len();
        if bytes[at] != b'.' {
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            // Unless the change fell into unused bits of the last character.
            if changed != token {
                let subject = verifier.subject(&bearer(&changed));
                prop_assert!(subject.is_none() || subject == Some("42".to_string()));
                if at < token.rfind('.').unwrap() {
                    prop_assert_eq!(subject, None, "a changed header or payload was accepted");
                }
            }
        }
    }
}
