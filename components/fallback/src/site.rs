//! What the catch-all route answers, as plain data so the rules are tested
//! natively: the dashboard's `index.html` at `/` and under `/app/...` (client
//! routes), hashed files under `/assets/...`, the OpenAPI document and its
//! page, and the JSON 404 for everything else.
//!
//! Caching: hashed assets never change, so they are `immutable` for a year;
//! `index.html`, `api-docs.html` and `openapi.json` are `no-cache` (always
//! revalidated through their `ETag`), so a deploy is seen on the next load.

use nexa_api::error::ApiError;
use nexa_api::routes::{self, Endpoint};

/// One embedded file, with its precompressed forms (absent when compressing
/// saves nothing).
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    /// Hash of the identity bytes; a representation's ETag adds its encoding.
    pub etag: &'static str,
    pub identity: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
}

/// The request facts the rules look at.
#[derive(Debug, Default, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub accept_encoding: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
}

#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static [u8],
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

pub fn serve(assets: &[Asset], request: Request<'_>) -> Reply {
    // The route table owns `/openapi.json` and `/api-docs` (and their 405s).
    let (path, cache) = match routes::resolve(request.method, request.path) {
        Ok(matched) if matched.endpoint == Endpoint::OpenApiDocument => {
            ("/openapi.json", REVALIDATE)
        }
        Ok(matched) if matched.endpoint == Endpoint::ApiDocsPage => ("/api-docs.html", REVALIDATE),
        Err(ApiError::MethodNotAllowed(allow)) => return method_not_allowed(&allow.join(", ")),
        // Any other API path is routed to its own component, never here.
        _ => match page_for(request.path) {
            Some(page) => page,
            None => return not_found(),
        },
    };
    if !matches!(request.method, "GET" | "HEAD") {
        return method_not_allowed("GET, HEAD");
    }
    match assets.iter().find(|a| a.path == path) {
        Some(asset) => representation(asset, cache, request),
        None => not_found(),
    }
}

/// The embedded file a dashboard path names, and how long it may be cached.
fn page_for(path: &str) -> Option<(&str, &'static str)> {
    if path == "/" || path == "/app" || path.starts_with("/app/") {
        Some(("/index.html", REVALIDATE))
    } else if path.starts_with("/assets/") && !path.ends_with('/') {
        Some((path, IMMUTABLE))
    } else {
        None
    }
}

fn representation(asset: &Asset, cache: &'static str, request: Request<'_>) -> Reply {
    let encoding = preferred_encoding(request.accept_encoding.unwrap_or_default(), asset);
    let (body, content_encoding) = match encoding {
        Encoding::Brotli => (asset.brotli.unwrap_or(asset.identity), Some("br")),
        Encoding::Gzip => (asset.gzip.unwrap_or(asset.identity), Some("gzip")),
        Encoding::Identity => (asset.identity, None),
    };
    let etag = match content_encoding {
        Some(coding) => format!("\"{}-{coding}\"", asset.etag),
        None => format!("\"{}\"", asset.etag),
    };
    let mut headers = vec![
        ("content-type", asset.content_type.to_string()),
        ("cache-control", cache.to_string()),
        ("etag", etag.clone()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if asset.gzip.is_some() || asset.brotli.is_some() {
        headers.push(("vary", "accept-encoding".to_string()));
    }
    if request
        .if_none_match
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Reply {
            status: 304,
            headers,
            body: &[],
        };
    }
    if let Some(coding) = content_encoding {
        headers.push(("content-encoding", coding.to_string()));
    }
    Reply {
        status: 200,
        headers,
        body,
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// Brotli over gzip over identity, among what the client accepts (`q` > 0,
/// `*` included) and the asset has.
fn preferred_encoding(accept_encoding: &str, asset: &Asset) -> Encoding {
    let quality = |coding: &str| -> f32 {
        let mut wildcard = None;
        for part in accept_encoding.split(',') {
            let mut fields = part.split(';');
            let name = fields.next().unwrap_or_default().trim();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            if name.eq_ignore_ascii_case(coding) {
                return q;
            }
            if name == "*" {
                wildcard = Some(q);
            }
        }
        wildcard.unwrap_or(0.0)
    };
    if asset.brotli.is_some() && quality("br") > 0.0 {
        Encoding::Brotli
    } else if asset.gzip.is_some() && quality("gzip") > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn not_found() -> Reply {
    json_error(404, br#"{"detail":"Not Found"}"#, None)
}

fn method_not_allowed(allow: &str) -> Reply {
    json_error(405, br#"{"detail":"Method Not Allowed"}"#, Some(allow))
}

fn json_error(status: u16, body: &'static [u8], allow: Option<&str>) -> Reply {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(allow) = allow {
        headers.push(("allow", allow.to_string()));
    }
    Reply {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSETS: &[Asset] = &[
        Asset {
            path: "/index.html",
            content_type: "text/html; charset=utf-8",
            etag: "aa",
            identity: b"<html>index</html>",
            gzip: Some(b"gz-index"),
            brotli: Some(b"br-index"),
        },
        Asset {
            path: "/api-docs.html",
            content_type: "text/html; charset=utf-8",
            etag: "bb",
            identity: b"<html>docs</html>",
            gzip: None,
            brotli: None,
        },
        Asset {
            path: "/openapi.json",
            content_type: "application/json",
            etag: "cc",
            identity: b"{}",
            gzip: Some(b"gz-doc"),
            brotli: None,
        },
        Asset {
            path: "/assets/app-1234.js",
            content_type: "text/javascript; charset=utf-8",
            etag: "dd",
            identity: b"js",
            gzip: Some(b"gz-js"),
            brotli: Some(b"br-js"),
        },
    ];

    fn get(path: &str) -> Reply {
        serve(
            ASSETS,
            Request {
                method: "GET",
                path,
                ..Default::default()
            },
        )
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn index_at_root_and_every_client_route() {
        for path in ["/", "/app", "/app/", "/app/items", "/app/users/3/edit"] {
            let reply = get(path);
            assert_eq!(
                (reply.status, reply.body),
                (200, &b"<html>index</html>"[..]),
                "{path}"
            );
            assert_eq!(header(&reply, "cache-control"), Some("no-cache"));
            assert_eq!(
                header(&reply, "content-type"),
                Some("text/html; charset=utf-8")
            );
        }
    }

    #[test]
    fn hashed_assets_are_immutable() {
        let reply = get("/assets/app-1234.js");
        assert_eq!(reply.status, 200);
        assert_eq!(header(&reply, "cache-control"), Some(IMMUTABLE));
        assert_eq!(header(&reply, "vary"), Some("accept-encoding"));
    }

    #[test]
    fn everything_else_is_the_json_404() {
        for path in [
            "/nope",
            "/assets/missing.js",
            "/assets/",
            "/index.html",
            "/application",
            "/favicon.ico",
        ] {
            let reply = get(path);
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(reply.body, br#"{"detail":"Not Found"}"#);
            assert_eq!(header(&reply, "content-type"), Some("application/json"));
        }
        let post = serve(
            ASSETS,
            Request {
                method: "POST",
                path: "/somewhere",
                ..Default::default()
            },
        );
        assert_eq!(post.status, 404);
    }

    #[test]
    fn pages_answer_get_and_head_only() {
        let reply = serve(
            ASSETS,
            Request {
                method: "POST",
                path: "/app/items",
                ..Default::default()
            },
        );
        assert_eq!(reply.status, 405);
        assert_eq!(header(&reply, "allow"), Some("GET, HEAD"));
        let reply = serve(
            ASSETS,
            Request {
                method: "DELETE",
                path: "/openapi.json",
                ..Default::default()
            },
        );
        assert_eq!(
            (reply.status, header(&reply, "allow")),
            (405, Some("GET, HEAD"))
        );
        let head = serve(
            ASSETS,
            Request {
                method: "HEAD",
                path: "/",
                ..Default::default()
            },
        );
        assert_eq!(head.status, 200);
    }

    #[test]
    fn the_document_and_its_page() {
        let doc = get("/openapi.json");
        assert_eq!((doc.status, doc.body), (200, &b"{}"[..]));
        assert_eq!(header(&doc, "content-type"), Some("application/json"));
        let page = get("/api-docs/");
        assert_eq!((page.status, page.body), (200, &b"<html>docs</html>"[..]));
        assert_eq!(header(&page, "vary"), None, "nothing to negotiate");
    }

    #[test]
    fn negotiates_brotli_then_gzip() {
        let with = |accept: &str| {
            serve(
                ASSETS,
                Request {
                    method: "GET",
                    path: "/",
                    accept_encoding: Some(accept),
                    ..Default::default()
                },
            )
        };
        let br = with("gzip, deflate, br");
        assert_eq!(
            (br.body, header(&br, "content-encoding")),
            (&b"br-index"[..], Some("br"))
        );
        assert_eq!(header(&br, "etag"), Some("\"aa-br\""));
        let gz = with("gzip;q=0.8, br;q=0");
        assert_eq!(
            (gz.body, header(&gz, "content-encoding")),
            (&b"gz-index"[..], Some("gzip"))
        );
        let star = with("*");
        assert_eq!(header(&star, "content-encoding"), Some("br"));
        let none = with("identity");
        assert_eq!(
            (none.body, header(&none, "content-encoding")),
            (&b"<html>index</html>"[..], None)
        );
        // The document has no brotli form: gzip is the best it can do.
        let doc = serve(
            ASSETS,
            Request {
                method: "GET",
                path: "/openapi.json",
                accept_encoding: Some("br, gzip"),
                ..Default::default()
            },
        );
        assert_eq!(header(&doc, "content-encoding"), Some("gzip"));
    }

    #[test]
    fn revalidation_answers_304_per_representation() {
        let request = |accept: Option<&'static str>, tag: &'static str| Request {
            method: "GET",
            path: "/app/items",
            accept_encoding: accept,
            if_none_match: Some(tag),
        };
        let fresh = serve(ASSETS, request(Some("br"), "\"aa-br\""));
        assert_eq!((fresh.status, fresh.body), (304, &b""[..]));
        // A gzip ETag does not validate the brotli representation.
        assert_eq!(
            serve(ASSETS, request(Some("br"), "\"aa-gzip\"")).status,
            200
        );
        assert_eq!(serve(ASSETS, request(None, "\"x\", \"aa\"")).status, 304);
    }
}
