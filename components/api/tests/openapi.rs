//! The OpenAPI document against the route table: the same operations, ids and
//! statuses, and a document that holds together (every `$ref` resolves,
//! every `{id}` is declared, every bearer-only 401 names the scheme).

use std::collections::{BTreeMap, BTreeSet};

use nexa_api::routes::ROUTES;
use serde_json::Value;

/// The document the fallback component embeds and serves.
const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    serde_json::from_str(OPENAPI_DOCUMENT).expect("openapi.json is JSON")
}

/// `(METHOD, path)` → operation, for every operation in the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.insert((method.to_uppercase(), path.clone()), op.clone());
            }
        }
    }
    out
}

#[test]
fn is_openapi_3_1() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn documents_exactly_the_routes() {
    let documented: BTreeSet<_> = operations(&document()).into_keys().collect();
    let routed: BTreeSet<_> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

/// What the host itself may answer on any route, before or instead of the
/// component (`host/src/server.rs`), and the shared response that documents
/// it: the route table lists the component's statuses, the document both.
const HOST_RESPONSES: [(u16, &str); 5] = [
    (408, "RequestTimeout"),
    (413, "PayloadTooLarge"),
    (429, "RateLimited"),
    (503, "Overloaded"),
    (504, "DeadlineExceeded"),
];

/// What the host answers only on state-changing methods: a cross-site
/// request riding on cookies or a form is refused before the component runs.
const HOST_UNSAFE_RESPONSES: [(u16, &str); 1] = [(403, "CrossSiteRefused")];

/// The host's statuses for a route's method.
fn host_responses(method: &str) -> Vec<(u16, &'static str)> {
    let mut responses = HOST_RESPONSES.to_vec();
    if !matches!(method, "GET" | "HEAD") {
        responses.extend(HOST_UNSAFE_RESPONSES);
    }
    responses
}

#[test]
fn each_operation_has_the_routes_id_and_statuses() {
    let ops = operations(&document());
    for route in ROUTES {
        let op = &ops[&(route.method.to_string(), route.path.to_string())];
        assert_eq!(op["operationId"], route.operation_id, "{route:?}");
        let documented: BTreeSet<u16> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("numeric status"))
            .collect();
        let answered: BTreeSet<u16> = route
            .statuses
            .iter()
            .copied()
            .chain(
                host_responses(route.method)
                    .into_iter()
                    .map(|(status, _)| status),
            )
            .collect();
        assert_eq!(
            documented, answered,
            "statuses of {} {}: the route table's and the host's",
            route.method, route.path
        );
    }
}

/// A host status the component never answers refers to the shared host
/// response; one the component answers too (503, or 429 on sign-in) has a
/// response whose body admits the host's error as well as the component's.
#[test]
fn host_statuses_are_documented_on_every_operation() {
    let doc = document();
    let host_error = &doc["components"]["schemas"]["HostError"];
    assert_eq!(
        host_error["required"],
        serde_json::json!(["detail", "request_id"])
    );
    let ops = operations(&doc);
    for route in ROUTES {
        let op = &ops[&(route.method.to_string(), route.path.to_string())];
        for (status, name) in host_responses(route.method) {
            let response = &op["responses"][status.to_string()];
            let shared = format!("#/components/responses/{name}");
            if !route.statuses.contains(&status) {
                assert_eq!(
                    response["$ref"], shared,
                    "{} {}: {status}",
                    route.method, route.path
                );
                continue;
            }
            let response = match response["$ref"].as_str() {
                Some(reference) => doc.pointer(&reference[1..]).expect("resolves"),
                None => response,
            };
            let mut refs = Vec::new();
            collect_refs(
                &response["content"]["application/json"]["schema"],
                &mut refs,
            );
            let required = |schema: &str| {
                doc.pointer(&format!("/components/schemas/{schema}/required"))
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            // `Error` needs only `detail`, so a host error fits it.
            assert!(
                refs.iter().any(|r| r == "#/components/schemas/HostError")
                    || refs.iter().any(|r| r == "#/components/schemas/Error")
                        && required("Error") == ["detail"],
                "{} {}: the {status} body does not admit the host's error",
                route.method,
                route.path
            );
        }
    }
}

#[test]
fn path_parameters_are_declared() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                let declared = [&item["parameters"], &item[*method]["parameters"]]
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flatten()
                    .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true);
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} not declared"
                );
            }
        }
    }
}

#[test]
fn bearer_endpoints_name_the_scheme() {
    let ops = operations(&document());
    for route in ROUTES.iter().filter(|r| r.statuses.contains(&401)) {
        let op = &ops[&(route.method.to_string(), route.path.to_string())];
        let uses_bearer = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|req| req.get("bearerAuth").is_some()));
        // Sign-in and refresh answer 401 for bad credentials, not a missing token.
        let own_credentials = matches!(route.path, "/auth/token" | "/auth/refresh");
        assert!(
            uses_bearer || own_credentials,
            "{} {}",
            route.method,
            route.path
        );
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "the document uses shared components");
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {reference}"));
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {reference}");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
