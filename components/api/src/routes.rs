//! The route table: every path and method the API serves, as data. The
//! components dispatch through [`resolve`], and `tests/openapi.rs` checks
//! `openapi.json` (served at `/openapi.json` by the fallback component)
//! against the same table, so the document cannot drift from what is served.
//!
//! Paths answer with and without a trailing slash (no redirects). `{id}` is a
//! positive integer; any other segment there names no resource (404 with the
//! resource's own message, as for an unknown id). `HEAD` is served wherever
//! `GET` is.

use crate::error::ApiError;

/// What a request asks for, once its path and method are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Health,
    OpenApiDocument,
    ApiDocsPage,
    IssueToken,
    RefreshToken,
    Logout,
    CreateUser,
    ListUsers,
    CurrentUser,
    GetUser,
    ListItems,
    GetItem,
    CreateItem,
    ReplaceItem,
    UpdateItem,
    DeleteItem,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// The OpenAPI path template.
    pub path: &'static str,
    pub endpoint: Endpoint,
    /// The OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// Every status the endpoint answers with; the document lists exactly these.
    pub statuses: &'static [u16],
}

const fn route(
    method: &'static str,
    path: &'static str,
    endpoint: Endpoint,
    operation_id: &'static str,
    statuses: &'static [u16],
) -> Route {
    Route {
        method,
        path,
        endpoint,
        operation_id,
        statuses,
    }
}

use Endpoint::*;

/// Literal paths come before `{id}` templates they overlap (`/users/me`
/// before `/users/{id}`): the first template that matches a path wins.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    route("GET", "/health", Health, "getHealth", &[200, 503]),
    route("GET", "/openapi.json", OpenApiDocument, "getOpenApiDocument", &[200]),
    route("GET", "/api-docs", ApiDocsPage, "getApiDocsPage", &[200]),
    route("POST", "/auth/token", IssueToken, "issueToken", &[200, 401, 415, 422, 429, 503]),
    route("POST", "/auth/refresh", RefreshToken, "refreshToken", &[200, 401, 422, 503]),
    route("POST", "/auth/logout", Logout, "logout", &[204, 401, 503]),
    route("POST", "/users", CreateUser, "createUser", &[201, 401, 403, 409, 415, 422, 503]),
    route("GET", "/users", ListUsers, "listUsers", &[200, 401, 403, 422, 503]),
    route("GET", "/users/me", CurrentUser, "getCurrentUser", &[200, 401, 503]),
    route("GET", "/users/{id}", GetUser, "getUser", &[200, 401, 403, 404, 503]),
    route("GET", "/items", ListItems, "listItems", &[200, 422, 503]),
    route("POST", "/items", CreateItem, "createItem", &[201, 401, 403, 415, 422, 503]),
    route("GET", "/items/{id}", GetItem, "getItem", &[200, 404, 503]),
    route("PUT", "/items/{id}", ReplaceItem, "replaceItem", &[200, 401, 403, 404, 415, 422, 503]),
    route("PATCH", "/items/{id}", UpdateItem, "updateItem", &[200, 401, 403, 404, 415, 422, 503]),
    route("DELETE", "/items/{id}", DeleteItem, "deleteItem", &[204, 401, 403, 404, 503]),
];

/// A matched request: the endpoint and the `{id}` in its path, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub endpoint: Endpoint,
    pub id: Option<i64>,
}

/// Matches a request against [`ROUTES`]: 404 for an unknown path (or a
/// non-numeric id), 405 with the allowed methods for a known path.
pub fn resolve(method: &str, path: &str) -> Result<Matched, ApiError> {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let template = ROUTES
        .iter()
        .map(|r| r.path)
        .find(|template| fits(template, &segments))
        .ok_or(ApiError::NotFound("Not Found"))?;
    let id = match template.split('/').skip(1).position(|s| s == "{id}") {
        Some(at) => match segments[at].parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => return Err(ApiError::NotFound(not_found_detail(template))),
        },
        None => None,
    };
    let wanted = if method == "HEAD" { "GET" } else { method };
    let on_path = || ROUTES.iter().filter(|r| r.path == template);
    match on_path().find(|r| r.method == wanted) {
        Some(route) => Ok(Matched {
            endpoint: route.endpoint,
            id,
        }),
        None => Err(ApiError::MethodNotAllowed(allowed_methods(
            on_path().map(|r| r.method),
        ))),
    }
}

/// The `Allow` list: the table's methods, with `HEAD` after `GET`.
fn allowed_methods(methods: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
    let mut allowed = Vec::new();
    for method in methods {
        allowed.push(method);
        if method == "GET" {
            allowed.push("HEAD");
        }
    }
    allowed
}

fn fits(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.split('/').skip(1).collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| *part == "{id}" || part == segment)
}

/// What a 404 says when a `{id}` path names no resource.
fn not_found_detail(template: &str) -> &'static str {
    if template.starts_with("/users/") {
        "User not found"
    } else if template.starts_with("/items/") {
        "Item not found"
    } else {
        "Not Found"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(method: &str, path: &str) -> Matched {
        resolve(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    #[test]
    fn collections_answer_with_and_without_trailing_slash() {
        for path in ["/items", "/items/"] {
            assert_eq!(matched("GET", path).endpoint, ListItems);
            assert_eq!(matched("POST", path).endpoint, CreateItem);
        }
        assert_eq!(matched("POST", "/users/").endpoint, CreateUser);
        assert_eq!(matched("POST", "/auth/token/").endpoint, IssueToken);
    }

    #[test]
    fn ids_are_positive_integers() {
        assert_eq!(matched("DELETE", "/items/42").id, Some(42));
        assert_eq!(matched("PATCH", "/items/7/").endpoint, UpdateItem);
        for bad in [
            "/items/0",
            "/items/-1",
            "/items/abc",
            "/items/99999999999999999999",
        ] {
            assert_eq!(
                resolve("GET", bad),
                Err(ApiError::NotFound("Item not found"))
            );
        }
        assert_eq!(
            resolve("GET", "/users/x"),
            Err(ApiError::NotFound("User not found"))
        );
    }

    #[test]
    fn literal_paths_win_over_templates() {
        assert_eq!(
            matched("GET", "/users/me"),
            Matched {
                endpoint: CurrentUser,
                id: None
            }
        );
        assert_eq!(matched("GET", "/users/3").endpoint, GetUser);
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(
            resolve("GET", "/items/1/extra"),
            Err(ApiError::NotFound("Not Found"))
        );
        assert_eq!(
            resolve("GET", "/itemsx"),
            Err(ApiError::NotFound("Not Found"))
        );
        assert_eq!(
            resolve("DELETE", "/items"),
            Err(ApiError::MethodNotAllowed(vec!["GET", "HEAD", "POST"]))
        );
        assert_eq!(
            resolve("GET", "/auth/token"),
            Err(ApiError::MethodNotAllowed(vec!["POST"]))
        );
        assert_eq!(
            resolve("POST", "/users/me"),
            Err(ApiError::MethodNotAllowed(vec!["GET", "HEAD"]))
        );
        assert_eq!(matched("HEAD", "/items/1").endpoint, GetItem);
    }

    #[test]
    fn the_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(
                seen.insert((route.method, route.path)),
                "duplicate {route:?}"
            );
            assert!(route.path.starts_with('/') && !route.path.ends_with('/'));
            // Every route must be reachable: no earlier template shadows it.
            let probe = route.path.replace("{id}", "1");
            assert_eq!(
                matched(route.method, &probe).endpoint,
                route.endpoint,
                "{route:?}"
            );
            assert!(route.statuses.iter().any(|s| (200..300).contains(s)));
        }
        let ids: std::collections::HashSet<_> = ROUTES.iter().map(|r| r.operation_id).collect();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
    }
}
