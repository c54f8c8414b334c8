//! What the catch-all route answers, as plain data so the rules are tested
//! natively: the dashboard's `index.html` at `/` and under `/app/...` (client
//! routes), hashed files under `/assets/...`, the OpenAPI document and its
//! page, and the JSON 404 for everything else.
//!
//! Caching: hashed assets never change, so they are `immutable` for a year;
//! `index.html`, `api-docs.html` and `openapi.json` are `no-cache` (always
//! revalidated through their `ETag`), so a deploy is seen on the next load.
//!
//! Security headers: each HTML page carries its own Content-Security-Policy
//! (`Page::policy`), set here rather than by the host so it holds under
//! Spin too; every response carries `Referrer-Policy: same-origin`.

use std::borrow::Cow;

use nexa_api::error::ApiError;
use nexa_api::routes::{self, Endpoint};

/// One embedded file: its compressed forms, or the file itself when
/// compressing it saves nothing.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    /// Hash of the identity bytes; a representation's ETag adds its encoding.
    pub etag: &'static str,
    pub embedded: Embedded,
    /// The brotli form, when it saves something.
    pub brotli: Option<&'static [u8]>,
}

/// What the binary holds for an asset besides its brotli form.
#[derive(Debug, Clone, Copy)]
pub enum Embedded {
    /// The file as is: gzip saves nothing on it (tiny, or not compressible).
    Identity(&'static [u8]),
    /// Only the gzip form, as `build.rs` writes it. A client that accepts
    /// neither brotli nor gzip gets it inflated on request: such clients are
    /// rare, and the identity copy would be the largest thing in the wasm.
    Gzip(&'static [u8]),
}

impl Asset {
    fn gzip(&self) -> Option<&'static [u8]> {
        match self.embedded {
            Embedded::Gzip(gzip) => Some(gzip),
            Embedded::Identity(_) => None,
        }
    }
}

/// What the component serves: the embedded files, and what the dashboard
/// may connect to besides its own origin.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub assets: &'a [Asset],
    /// Extra `connect-src` sources for the dashboard, space-separated: the
    /// trace collector's origin when the build names one
    /// (`VITE_OTEL_EXPORTER_OTLP_ENDPOINT`), else empty.
    pub connect_src: &'a str,
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
    /// Embedded bytes, or a file inflated for a client that takes no
    /// compressed form.
    pub body: Cow<'static, [u8]>,
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// `same-origin`: the pages talk only to their own origin, which keeps the
/// full `Referer` (and a real `Origin` on a same-origin form post, which
/// `no-referrer` turns into `null`); any other site, a link out or the
/// optional trace collector, gets none, not even the origin the browsers'
/// default (`strict-origin-when-cross-origin`) would send.
const REFERRER_POLICY: &str = "same-origin";

/// An HTML page, served with its own Content-Security-Policy.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Page {
    /// `index.html`: the React dashboard.
    Dashboard,
    /// `api-docs.html`: Swagger UI.
    ApiDocs,
}

impl Page {
    /// Only what the page loads, nothing by default. Both pages are built by
    /// vite into same-origin script and style files (no inline code, no
    /// `eval`), talk only to this origin, submit every form through script
    /// (`form-action 'none'`: a native submission would put the fields, a
    /// password among them, into a URL), and are never framed.
    fn policy(self, connect_src: &str) -> String {
        let (style_src, img_src, connect_extra) = match self {
            // No inline style and no `data:` image: its CSS has no `url()`.
            Page::Dashboard => ("'self'", "'self'", connect_src),
            // Swagger UI sets inline styles, and its stylesheet draws icons
            // from `data:` URLs. It sends no spans.
            Page::ApiDocs => ("'self' 'unsafe-inline'", "'self' data:", ""),
        };
        let space = if connect_extra.is_empty() { "" } else { " " };
        format!(
            "default-src 'none'; script-src 'self'; style-src {style_src}; img-src {img_src}; \
             connect-src 'self'{space}{connect_extra}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

/// One embedded file to answer with: its path in the table, how long it may
/// be cached, and the page it is, if it is one.
struct File<'a> {
    path: &'a str,
    cache: &'static str,
    page: Option<Page>,
}

pub fn serve(site: Site<'_>, request: Request<'_>) -> Reply {
    let mut reply = answer(site, request);
    reply
        .headers
        .push(("referrer-policy", REFERRER_POLICY.to_string()));
    reply
}

fn answer(site: Site<'_>, request: Request<'_>) -> Reply {
    // The route table owns `/openapi.json` and `/api-docs` (and their 405s).
    let file = match routes::resolve(request.method, request.path) {
        Ok(matched) if matched.endpoint == Endpoint::OpenApiDocument => File {
            path: "/openapi.json",
            cache: REVALIDATE,
            page: None,
        },
        Ok(matched) if matched.endpoint == Endpoint::ApiDocsPage => File {
            path: "/api-docs.html",
            cache: REVALIDATE,
            page: Some(Page::ApiDocs),
        },
        Err(ApiError::MethodNotAllowed(allow)) => return method_not_allowed(&allow.join(", ")),
        // Any other API path is routed to its own component, never here.
        _ => match dashboard_file(request.path) {
            Some(file) => file,
            None => return not_found(),
        },
    };
    if !matches!(request.method, "GET" | "HEAD") {
        return method_not_allowed("GET, HEAD");
    }
    match site.assets.iter().find(|a| a.path == file.path) {
        Some(asset) => {
            let policy = file.page.map(|page| page.policy(site.connect_src));
            representation(asset, file.cache, policy, request)
        }
        None => not_found(),
    }
}

/// The embedded file a dashboard path names.
fn dashboard_file(path: &str) -> Option<File<'_>> {
    if path == "/" || path == "/app" || path.starts_with("/app/") {
        Some(File {
            path: "/index.html",
            cache: REVALIDATE,
            page: Some(Page::Dashboard),
        })
    } else if path.starts_with("/assets/") && !path.ends_with('/') {
        Some(File {
            path,
            cache: IMMUTABLE,
            page: None,
        })
    } else {
        None
    }
}

fn representation(
    asset: &Asset,
    cache: &'static str,
    policy: Option<String>,
    request: Request<'_>,
) -> Reply {
    let encoding = preferred_encoding(request.accept_encoding.unwrap_or_default(), asset);
    let etag = match encoding.coding() {
        Some(coding) => format!("\"{}-{coding}\"", asset.etag),
        None => format!("\"{}\"", asset.etag),
    };
    let mut headers = vec![
        ("content-type", asset.content_type.to_string()),
        ("cache-control", cache.to_string()),
        ("etag", etag.clone()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if let Some(policy) = policy {
        headers.push(("content-security-policy", policy));
    }
    if asset.gzip().is_some() || asset.brotli.is_some() {
        headers.push(("vary", "accept-encoding".to_string()));
    }
    if request
        .if_none_match
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Reply {
            status: 304,
            headers,
            body: Cow::Borrowed(&[]),
        };
    }
    let body = match (encoding, asset.embedded) {
        (Encoding::Brotli(bytes) | Encoding::Gzip(bytes), _)
        | (Encoding::Identity, Embedded::Identity(bytes)) => Cow::Borrowed(bytes),
        (Encoding::Identity, Embedded::Gzip(gzip)) => match gunzip(gzip) {
            Some(bytes) => Cow::Owned(bytes),
            // Only a broken build gets here: the host tests inflate every asset.
            None => return internal_error(),
        },
    };
    if let Some(coding) = encoding.coding() {
        headers.push(("content-encoding", coding.to_string()));
    }
    Reply {
        status: 200,
        headers,
        body,
    }
}

/// The representation chosen, with its embedded bytes when it has them.
#[derive(Debug, PartialEq, Clone, Copy)]
enum Encoding {
    Brotli(&'static [u8]),
    Gzip(&'static [u8]),
    Identity,
}

impl Encoding {
    /// Its `content-encoding` (and ETag suffix).
    fn coding(self) -> Option<&'static str> {
        match self {
            Encoding::Brotli(_) => Some("br"),
            Encoding::Gzip(_) => Some("gzip"),
            Encoding::Identity => None,
        }
    }
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
    match (asset.brotli, asset.gzip()) {
        (Some(brotli), _) if quality("br") > 0.0 => Encoding::Brotli(brotli),
        (_, Some(gzip)) if quality("gzip") > 0.0 => Encoding::Gzip(gzip),
        _ => Encoding::Identity,
    }
}

/// The bytes of a gzip member as `build.rs` writes it (RFC 1952 with a bare
/// 10-byte header, as flate2's encoder makes it), or `None` if `gzip` is not
/// one. Inflating with miniz_oxide into a buffer of the size the trailer
/// records costs one allocation. The CRC is not checked: the bytes are in
/// the binary, and the host tests compare every inflated asset with its file.
fn gunzip(gzip: &[u8]) -> Option<Vec<u8>> {
    let (header, rest) = gzip.split_at_checked(10)?;
    // Magic, deflate, no optional header fields (flags 0).
    if header[..4] != [0x1f, 0x8b, 8, 0] {
        return None;
    }
    let (deflate, trailer) = rest.split_at_checked(rest.len().checked_sub(8)?)?;
    let size = u32::from_le_bytes(trailer[4..].try_into().ok()?);
    let mut bytes = vec![0; usize::try_from(size).ok()?];
    let written = miniz_oxide::inflate::decompress_slice_iter_to_slice(
        &mut bytes,
        std::iter::once(deflate),
        false,
        true,
    )
    .ok()?;
    (written == bytes.len()).then_some(bytes)
}

fn not_found() -> Reply {
    json_error(404, br#"{"detail":"Not Found"}"#, None)
}

fn method_not_allowed(allow: &str) -> Reply {
    json_error(405, br#"{"detail":"Method Not Allowed"}"#, Some(allow))
}

fn internal_error() -> Reply {
    json_error(500, br#"{"detail":"Internal Server Error"}"#, None)
}

fn json_error(status: u16, body: &'static [u8], allow: Option<&str>) -> Reply {
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(allow) = allow {
        headers.push(("allow", allow.to_string()));
    }
    Reply {
        status,
        headers,
        body: Cow::Borrowed(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::sync::LazyLock;

    /// `data` as build.rs embeds it: flate2's gzip at its best level.
    fn gzip(data: &[u8]) -> &'static [u8] {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().leak()
    }

    fn gunzip_with_flate2(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Larger than one deflate block, with long matches and literals.
    fn long_script() -> Vec<u8> {
        (0..40_000u32)
            .flat_map(|i| format!("const v{i} = {};\n", i.wrapping_mul(2_654_435_761)).into_bytes())
            .collect()
    }

    static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
        vec![
            Asset {
                path: "/index.html",
                content_type: "text/html; charset=utf-8",
                etag: "aa",
                embedded: Embedded::Gzip(gzip(b"<html>index</html>")),
                brotli: Some(b"br-index"),
            },
            Asset {
                path: "/api-docs.html",
                content_type: "text/html; charset=utf-8",
                etag: "bb",
                embedded: Embedded::Identity(b"<html>docs</html>"),
                brotli: None,
            },
            Asset {
                path: "/openapi.json",
                content_type: "application/json",
                etag: "cc",
                embedded: Embedded::Gzip(gzip(b"{}")),
                brotli: None,
            },
            Asset {
                path: "/assets/app-1234.js",
                content_type: "text/javascript; charset=utf-8",
                etag: "dd",
                embedded: Embedded::Gzip(gzip(&long_script())),
                brotli: Some(b"br-js"),
            },
            Asset {
                path: "/assets/logo-1234.svg",
                content_type: "image/svg+xml",
                etag: "ee",
                embedded: Embedded::Identity(b"<svg/>"),
                brotli: Some(b"br-svg"),
            },
            Asset {
                path: "/assets/broken-1234.js",
                content_type: "text/javascript; charset=utf-8",
                etag: "ff",
                embedded: Embedded::Gzip(b"not gzip"),
                brotli: None,
            },
        ]
    });

    fn site() -> Site<'static> {
        Site {
            assets: &ASSETS,
            connect_src: "",
        }
    }

    fn get(path: &str) -> Reply {
        serve(
            site(),
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
                (reply.status, &*reply.body),
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

    /// A policy's directives by name, each with its sources.
    fn directives(policy: &str) -> Vec<(&str, Vec<&str>)> {
        policy
            .split(';')
            .map(|directive| {
                let mut words = directive.split_whitespace();
                (words.next().unwrap_or_default(), words.collect())
            })
            .collect()
    }

    fn policy_of(reply: &Reply) -> &str {
        header(reply, "content-security-policy").expect("a content-security-policy")
    }

    const DASHBOARD_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
        img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
        frame-ancestors 'none'";

    #[test]
    fn the_dashboard_policy_allows_nothing_inline() {
        for path in ["/", "/app", "/app/", "/app/items", "/app/users/3/edit"] {
            let reply = get(path);
            assert_eq!(policy_of(&reply), DASHBOARD_POLICY, "{path}");
            for (name, sources) in directives(policy_of(&reply)) {
                assert!(
                    sources.iter().all(|s| !s.starts_with("'unsafe-")
                        && !["data:", "blob:", "*"].contains(s)),
                    "{path}: {name} {sources:?}"
                );
            }
        }
        // Revalidated and HEAD answers carry it too.
        let head = serve(
            site(),
            Request {
                method: "HEAD",
                path: "/app/items",
                ..Default::default()
            },
        );
        assert_eq!(policy_of(&head), DASHBOARD_POLICY);
        let fresh = serve(
            site(),
            Request {
                method: "GET",
                path: "/",
                if_none_match: Some("\"aa\""),
                ..Default::default()
            },
        );
        assert_eq!((fresh.status, policy_of(&fresh)), (304, DASHBOARD_POLICY));
    }

    #[test]
    fn the_api_docs_policy_adds_only_what_swagger_ui_needs() {
        for path in ["/api-docs", "/api-docs/"] {
            let reply = get(path);
            assert_eq!(reply.status, 200, "{path}");
            assert_eq!(
                policy_of(&reply),
                "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
                "{path}"
            );
            // Beside the dashboard's: inline styles and `data:` images, nothing else.
            let dashboard = directives(DASHBOARD_POLICY);
            let loosened: Vec<_> = directives(policy_of(&reply))
                .into_iter()
                .filter(|directive| !dashboard.contains(directive))
                .collect();
            assert_eq!(
                loosened,
                [
                    ("style-src", vec!["'self'", "'unsafe-inline'"]),
                    ("img-src", vec!["'self'", "data:"]),
                ]
            );
        }
    }

    #[test]
    fn the_dashboard_may_reach_the_trace_collector_a_build_names() {
        let site = Site {
            assets: &ASSETS,
            connect_src: "http://localhost:4318",
        };
        let request = |path| Request {
            method: "GET",
            path,
            ..Default::default()
        };
        let connect_src = |path| {
            directives(policy_of(&serve(site, request(path))))
                .into_iter()
                .find(|(name, _)| *name == "connect-src")
                .map(|(_, sources)| sources.join(" "))
        };
        assert_eq!(
            connect_src("/app/items").as_deref(),
            Some("'self' http://localhost:4318")
        );
        // Swagger UI sends no spans.
        assert_eq!(connect_src("/api-docs").as_deref(), Some("'self'"));
    }

    #[test]
    fn only_pages_carry_a_policy_and_every_answer_a_referrer_policy() {
        for path in [
            "/assets/app-1234.js",
            "/assets/logo-1234.svg",
            "/openapi.json",
            "/nope",
        ] {
            let reply = get(path);
            assert_eq!(header(&reply, "content-security-policy"), None, "{path}");
            assert_eq!(header(&reply, "referrer-policy"), Some("same-origin"));
        }
        for path in ["/", "/api-docs"] {
            assert_eq!(header(&get(path), "referrer-policy"), Some("same-origin"));
        }
        let post = serve(
            site(),
            Request {
                method: "POST",
                path: "/",
                ..Default::default()
            },
        );
        assert_eq!(
            (post.status, header(&post, "referrer-policy")),
            (405, Some("same-origin"))
        );
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
            assert_eq!(&*reply.body, br#"{"detail":"Not Found"}"#);
            assert_eq!(header(&reply, "content-type"), Some("application/json"));
        }
        let post = serve(
            site(),
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
            site(),
            Request {
                method: "POST",
                path: "/app/items",
                ..Default::default()
            },
        );
        assert_eq!(reply.status, 405);
        assert_eq!(header(&reply, "allow"), Some("GET, HEAD"));
        let reply = serve(
            site(),
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
            site(),
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
        assert_eq!((doc.status, &*doc.body), (200, &b"{}"[..]));
        assert_eq!(header(&doc, "content-type"), Some("application/json"));
        let page = get("/api-docs/");
        assert_eq!((page.status, &*page.body), (200, &b"<html>docs</html>"[..]));
        assert_eq!(header(&page, "vary"), None, "nothing to negotiate");
    }

    #[test]
    fn negotiates_brotli_then_gzip() {
        let with = |accept: &str| {
            serve(
                site(),
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
            (&*br.body, header(&br, "content-encoding")),
            (&b"br-index"[..], Some("br"))
        );
        assert_eq!(header(&br, "etag"), Some("\"aa-br\""));
        let gz = with("gzip;q=0.8, br;q=0");
        assert_eq!(header(&gz, "content-encoding"), Some("gzip"));
        assert_eq!(header(&gz, "etag"), Some("\"aa-gzip\""));
        assert_eq!(gunzip_with_flate2(&gz.body), b"<html>index</html>");
        let star = with("*");
        assert_eq!(header(&star, "content-encoding"), Some("br"));
        let none = with("identity");
        assert_eq!(
            (&*none.body, header(&none, "content-encoding")),
            (&b"<html>index</html>"[..], None)
        );
        assert_eq!(header(&none, "etag"), Some("\"aa\""));
        assert_eq!(header(&none, "vary"), Some("accept-encoding"));
        // The document has no brotli form: gzip is the best it can do.
        let doc = serve(
            site(),
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
        let fresh = serve(site(), request(Some("br"), "\"aa-br\""));
        assert_eq!((fresh.status, &*fresh.body), (304, &b""[..]));
        // A gzip ETag does not validate the brotli representation.
        assert_eq!(
            serve(site(), request(Some("br"), "\"aa-gzip\"")).status,
            200
        );
        assert_eq!(serve(site(), request(None, "\"x\", \"aa\"")).status, 304);
    }

    #[test]
    fn identity_is_inflated_from_the_gzip_form() {
        let script = long_script();
        let with = |accept: Option<&'static str>| {
            serve(
                site(),
                Request {
                    method: "GET",
                    path: "/assets/app-1234.js",
                    accept_encoding: accept,
                    ..Default::default()
                },
            )
        };
        for accept in [
            None,
            Some("identity"),
            Some("br;q=0, gzip;q=0"),
            Some("deflate"),
        ] {
            let reply = with(accept);
            assert_eq!(reply.status, 200, "{accept:?}");
            assert!(matches!(reply.body, Cow::Owned(_)), "{accept:?}");
            assert!(reply.body == script, "{accept:?}: the file, byte for byte");
            assert_eq!(header(&reply, "content-encoding"), None);
            assert_eq!(header(&reply, "etag"), Some("\"dd\""));
            assert_eq!(header(&reply, "cache-control"), Some(IMMUTABLE));
        }
        // The gzip form sent as is is the one that inflates to the file.
        let gz = with(Some("gzip"));
        assert!(matches!(gz.body, Cow::Borrowed(_)));
        assert_eq!(gunzip_with_flate2(&gz.body), script);
    }

    #[test]
    fn an_asset_without_a_gzip_form_is_sent_as_is() {
        let request = |accept: &'static str| Request {
            method: "GET",
            path: "/assets/logo-1234.svg",
            accept_encoding: Some(accept),
            ..Default::default()
        };
        let plain = serve(site(), request("gzip"));
        assert_eq!(
            (&*plain.body, header(&plain, "content-encoding")),
            (&b"<svg/>"[..], None)
        );
        assert_eq!(header(&plain, "vary"), Some("accept-encoding"));
        let br = serve(site(), request("gzip, br"));
        assert_eq!(&*br.body, b"br-svg");
    }

    #[test]
    fn a_gzip_form_that_does_not_inflate_is_a_500_not_garbage() {
        let request = |tag: Option<&'static str>| Request {
            method: "GET",
            path: "/assets/broken-1234.js",
            if_none_match: tag,
            ..Default::default()
        };
        let reply = serve(site(), request(None));
        assert_eq!(reply.status, 500);
        assert_eq!(&*reply.body, br#"{"detail":"Internal Server Error"}"#);
        // Revalidating never inflates.
        assert_eq!(serve(site(), request(Some("\"ff\""))).status, 304);
    }

    #[test]
    fn gunzip_takes_what_build_rs_writes_and_nothing_else() {
        for data in [&b""[..], b"x", &long_script()] {
            assert_eq!(gunzip(gzip(data)).as_deref(), Some(data));
        }
        let good = gzip(b"<html>index</html>");
        // Truncated, a wrong recorded size, optional header fields.
        assert_eq!(gunzip(&good[..good.len() - 1]), None);
        let mut wrong_size = good.to_vec();
        *wrong_size.last_mut().unwrap() ^= 1;
        assert_eq!(gunzip(&wrong_size), None);
        let mut named = good.to_vec();
        named[3] = 8;
        assert_eq!(gunzip(&named), None);
        assert_eq!(gunzip(&good[..9]), None);
    }
}
