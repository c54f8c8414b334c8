//! The route table: spin.toml's `[[trigger.http]]` routes, matched exactly as
//! Spin matches them (with the `routefinder` crate Spin uses): exact routes
//! before wildcards, then the longest wildcard prefix; `/x/...` also matches
//! `/x`; `:name` captures one segment.

use std::collections::HashSet;
use std::sync::Arc;

use http::HeaderValue;

use crate::config::manifest::{LoadedManifest, RouteDecl};
use crate::metrics::RequestSeries;

/// Routes under this prefix are reserved by Spin.
const RESERVED_PREFIX: &str = "/.well-known/spin/";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    #[error("route {route:?} is declared twice (components \"{first}\" and \"{second}\")")]
    Duplicate {
        route: String,
        first: String,
        second: String,
    },
    #[error("route {route:?} of component \"{component}\": {message}")]
    Invalid {
        route: String,
        component: String,
        message: String,
    },
}

#[derive(Debug, Clone)]
struct RouteEntry {
    component: String,
    /// As written in the manifest (made absolute).
    raw: String,
    /// The route without its trailing `/...`.
    prefix: String,
    wildcard: bool,
    /// Its metrics, resolved once (see [`RequestSeries`]).
    series: Arc<RequestSeries>,
}

/// Public routes and the set of components reachable only privately.
pub struct RouteTable {
    router: routefinder::Router<RouteEntry>,
    /// Each public route as declared, with its component, in manifest order.
    declared: Vec<(String, String)>,
    private: HashSet<String>,
    /// What a chained request to a path outside its component's routes
    /// matches: `/...`.
    catch_all: RouteEntry,
}

/// The outcome of routing one path.
pub struct RouteMatch<'a> {
    entry: &'a RouteEntry,
    captures: Vec<(String, String)>,
    path_info: String,
}

impl RouteTable {
    pub fn build(manifest: &LoadedManifest) -> Result<Self, RouteError> {
        let mut router = routefinder::Router::new();
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut private = HashSet::new();
        for trigger in &manifest.manifest.trigger.http {
            let component = trigger.component.clone();
            let raw = match &trigger.route {
                RouteDecl::Private(_) => {
                    private.insert(component);
                    continue;
                }
                RouteDecl::Path(path) => normalize(path),
            };
            let invalid = |message: &str| RouteError::Invalid {
                route: raw.clone(),
                component: component.clone(),
                message: message.to_string(),
            };
            if raw.starts_with(RESERVED_PREFIX) || raw == RESERVED_PREFIX.trim_end_matches('/') {
                return Err(invalid("routes under /.well-known/spin/ are reserved"));
            }
            if let Some((_, first)) = seen.iter().find(|(route, _)| *route == raw) {
                return Err(RouteError::Duplicate {
                    route: raw,
                    first: first.clone(),
                    second: component,
                });
            }
            seen.push((raw.clone(), component.clone()));
            let (spec, prefix, wildcard) = match raw.strip_suffix("/...") {
                Some(prefix) => (format!("{prefix}/*"), prefix.to_string(), true),
                None => (raw.clone(), raw.clone(), raw.ends_with("/*")),
            };
            let entry = RouteEntry {
                series: Arc::new(RequestSeries::new(declared_form(&raw), &component)),
                component: component.clone(),
                raw: raw.clone(),
                prefix,
                wildcard,
            };
            router.add(spec.as_str(), entry).map_err(|e| invalid(&e))?;
        }
        let catch_all = RouteEntry {
            component: String::new(),
            raw: "/...".to_string(),
            prefix: String::new(),
            wildcard: true,
            series: Arc::new(RequestSeries::new("/...", "")),
        };
        Ok(Self {
            router,
            declared: seen
                .into_iter()
                .map(|(raw, component)| (declared_form(&raw).to_string(), component))
                .collect(),
            private,
            catch_all,
        })
    }

    /// The public routes of `component`, as declared.
    pub fn routes_of(&self, component: &str) -> Vec<&str> {
        self.declared
            .iter()
            .filter(|(_, owner)| owner == component)
            .map(|(route, _)| route.as_str())
            .collect()
    }

    /// The component for a request path, or `None` (Spin's 404).
    pub fn route<'a>(&'a self, path: &str) -> Option<RouteMatch<'a>> {
        let found = self.router.best_match(path)?;
        let entry = found.handler();
        let captures = found.captures();
        let path_info = match (entry.wildcard, captures.wildcard()) {
            (true, Some(rest)) => match (rest.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_string(),
                (false, false) => format!("/{rest}"),
                (false, true) => format!("/{rest}/"),
            },
            _ => String::new(),
        };
        let captures = captures
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Some(RouteMatch {
            entry,
            captures,
            path_info,
        })
    }

    /// The match for a chained request (`http://<component>.spin.internal`):
    /// the component's own route when the path is one of its routes, else
    /// `/...` (private components have no route of their own).
    pub fn for_component<'a>(&'a self, component: &str, path: &str) -> RouteMatch<'a> {
        match self.route(path) {
            Some(found) if found.component() == component => found,
            _ => RouteMatch {
                entry: &self.catch_all,
                captures: Vec::new(),
                path_info: path.to_string(),
            },
        }
    }

    /// Components that have a `{ private = true }` route.
    pub fn is_private(&self, component: &str) -> bool {
        self.private.contains(component)
    }
}

/// Spin's normalisation: absolute, one trailing slash dropped.
fn normalize(route: &str) -> String {
    let absolute = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    };
    match absolute.strip_suffix('/') {
        Some(stripped) => stripped.to_string(),
        None => absolute,
    }
}

/// A route as spin.toml declares it (the root, normalized to empty, is `/`).
fn declared_form(raw: &str) -> &str {
    if raw.is_empty() { "/" } else { raw }
}

impl<'a> RouteMatch<'a> {
    /// The route's request metrics (labelled by template and component).
    pub fn series(&self) -> &'a RequestSeries {
        &self.entry.series
    }

    pub fn component(&self) -> &str {
        &self.entry.component
    }

    /// The route as declared, e.g. `/items/...` (also the metrics label).
    pub fn route(&self) -> &str {
        declared_form(&self.entry.raw)
    }

    /// The `spin-*` request headers for this match. The caller overwrites any
    /// the client sent.
    pub fn spin_headers(&self, full_url: &str, client_addr: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("spin-full-url".to_string(), full_url.to_string()),
            ("spin-path-info".to_string(), self.path_info.clone()),
            ("spin-matched-route".to_string(), self.route().to_string()),
            ("spin-base-path".to_string(), "/".to_string()),
            (
                "spin-raw-component-route".to_string(),
                self.route().to_string(),
            ),
            (
                "spin-component-route".to_string(),
                self.entry.prefix.clone(),
            ),
            ("spin-client-addr".to_string(), client_addr.to_string()),
        ];
        for (name, value) in &self.captures {
            headers.push((
                format!("spin-path-match-{}", name.to_ascii_lowercase()),
                value.clone(),
            ));
        }
        headers
    }
}

/// Whether a header name is one the host owns (`spin-*`): any the client sent
/// are removed before the host sets its own.
pub fn is_spin_header(name: &str) -> bool {
    name.len() >= 5 && name[..5].eq_ignore_ascii_case("spin-")
}

/// A header value from untrusted text, replacing what a header cannot carry.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        HeaderValue::from_str(&text.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), "%"))
            .unwrap_or(HeaderValue::from_static(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;
    use std::path::Path;

    fn table(routes: &[(&str, &str)]) -> Result<RouteTable, RouteError> {
        let mut text = String::from("spin_manifest_version = 2\n[application]\nname = \"t\"\n");
        let mut components = HashSet::new();
        for (route, component) in routes {
            let route = if *route == "private" {
                "{ private = true }".to_string()
            } else {
                format!("{route:?}")
            };
            text.push_str(&format!(
                "[[trigger.http]]\nroute = {route}\ncomponent = \"{component}\"\n"
            ));
            components.insert(*component);
        }
        for component in components {
            text.push_str(&format!("[component.{component}]\nsource = \"x.wasm\"\n"));
        }
        let manifest = LoadedManifest {
            path: "spin.toml".into(),
            dir: ".".into(),
            manifest: parse_toml(Path::new("spin.toml"), &text).unwrap(),
        };
        RouteTable::build(&manifest)
    }

    fn component(table: &RouteTable, path: &str) -> Option<String> {
        table.route(path).map(|m| m.component().to_string())
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let t = table(&[
            ("/...", "all"),
            ("/one", "one-exact"),
            ("/one/...", "one"),
            ("/one/two/...", "one-two"),
        ])
        .unwrap();
        assert_eq!(component(&t, "/one").as_deref(), Some("one-exact"));
        assert_eq!(component(&t, "/one/x").as_deref(), Some("one"));
        assert_eq!(component(&t, "/one/two").as_deref(), Some("one-two"));
        assert_eq!(
            component(&t, "/one/two/three/four").as_deref(),
            Some("one-two")
        );
        assert_eq!(component(&t, "/").as_deref(), Some("all"));
        assert_eq!(component(&t, "/elsewhere/deep").as_deref(), Some("all"));
    }

    #[test]
    fn trailing_wildcard_matches_its_prefix_and_reports_path_info() {
        let t = table(&[("/static/...", "files")]).unwrap();
        let cases = [
            ("/static", ""),
            ("/static/", "/"),
            ("/static/a/b", "/a/b"),
            ("/static/a/", "/a/"),
        ];
        for (path, info) in cases {
            let m = t.route(path).unwrap_or_else(|| panic!("{path} unmatched"));
            assert_eq!(m.path_info, info, "{path}");
            assert_eq!(m.route(), "/static/...");
        }
        // routefinder (and so Spin) lets `/static/*` match `/staticx` too,
        // reporting `/x` as the path info. Matched the same way here.
        assert_eq!(
            t.route("/staticx").map(|m| m.path_info),
            Some("/x".to_string())
        );
        assert!(t.route("/other").is_none());
    }

    #[test]
    fn named_segments_are_captured() {
        let t = table(&[("/users/:id/items/:item", "items")]).unwrap();
        let m = t.route("/users/42/items/7").unwrap();
        let headers = m.spin_headers("http://h/users/42/items/7", "127.0.0.1:9");
        assert!(headers.contains(&("spin-path-match-id".into(), "42".into())));
        assert!(headers.contains(&("spin-path-match-item".into(), "7".into())));
        assert!(headers.contains(&("spin-matched-route".into(), "/users/:id/items/:item".into())));
        assert!(t.route("/users/42/items").is_none());
    }

    #[test]
    fn private_routes_are_not_reachable() {
        let t = table(&[("private", "internal"), ("/a", "public")]).unwrap();
        assert!(t.is_private("internal"));
        assert!(component(&t, "/internal").is_none());
    }

    #[test]
    fn duplicates_and_reserved_routes_are_refused() {
        assert!(matches!(
            table(&[("/a", "x"), ("/a/", "y")]),
            Err(RouteError::Duplicate { .. })
        ));
        assert!(matches!(
            table(&[("/.well-known/spin/health", "x")]),
            Err(RouteError::Invalid { .. })
        ));
    }

    #[test]
    fn spin_header_names() {
        assert!(is_spin_header("Spin-Full-Url"));
        assert!(is_spin_header("spin-path-match-id"));
        assert!(!is_spin_header("spinach"));
    }
}
