//! The catch-all component as a browser and an API client meet it: the
//! embedded dashboard (index at `/` and client routes, hashed assets with
//! long caching and precompressed forms, inflated for a client that takes
//! neither), the OpenAPI document checked against the live host, the API
//! docs page, and the size of the component that embeds all of it.

use std::io::Read;

use serde_json::Value;

use crate::contract::Contract;
use crate::support::{Host, component, rc_args, repo_app, repo_root};

fn start() -> (crate::support::AppDir, Host) {
    let app = repo_app("");
    let host = app.start(&rc_args(&app).each_ref().map(String::as_str));
    (app, host)
}

/// The `/assets/...` URLs an HTML page references.
fn asset_urls(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn index_is_served_at_root_and_client_routes_uncached() {
    let (_app, host) = start();
    let on_disk = std::fs::read_to_string(repo_root().join("frontend/dist/index.html")).unwrap();
    for path in [
        "/",
        "/app/items",
        "/app/users/",
        "/app/sign-in?next=%2Fapp%2Fitems",
    ] {
        let response = host.client().get(host.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-cache");
        assert!(headers.contains_key("etag") && headers.contains_key("x-request-id"));
        assert_eq!(response.text().await.unwrap(), on_disk, "{path}");
    }
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_precompressed() {
    let (_app, host) = start();
    let index = host
        .client()
        .get(host.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let urls = asset_urls(&index);
    assert!(
        urls.iter().any(|u| u.ends_with(".js")),
        "index references a script: {index}"
    );
    assert!(
        urls.iter().any(|u| u.ends_with(".css")),
        "index references a stylesheet: {index}"
    );
    for url in urls {
        assert_asset_served_as_built(&host, &url).await;
    }
    let missing = host
        .client()
        .get(host.url("/assets/missing-0000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.unwrap(), r#"{"detail":"Not Found"}"#);
}

/// One hashed asset in each of its representations: identity (inflated by
/// the component when only compressed forms are embedded) byte-identical to
/// `frontend/dist`, brotli and gzip decoding to it, each with its own ETag
/// that revalidates to a 304.
async fn assert_asset_served_as_built(host: &Host, url: &str) {
    let on_disk = std::fs::read(repo_root().join("frontend/dist").join(&url[1..])).unwrap();
    let get = |encoding: Option<&'static str>, etag: Option<&str>| {
        let mut request = host.client().get(host.url(url));
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    let expected_type = match url.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("unexpected asset type {other:?}: {url}"),
    };
    // `identity` and no accept-encoding at all ask for the same thing.
    let mut identity_etag = None;
    for encoding in [Some("identity"), None] {
        let plain = get(encoding, None).await.unwrap();
        assert_eq!(plain.status(), 200, "{url}");
        assert_eq!(
            plain.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(plain.headers()["content-type"], expected_type, "{url}");
        assert!(!plain.headers().contains_key("content-encoding"));
        let etag = plain.headers()["etag"].to_str().unwrap().to_string();
        assert!(!etag.contains('-'), "{url}: identity ETag {etag}");
        assert_eq!(plain.bytes().await.unwrap(), on_disk, "{url} {encoding:?}");
        identity_etag = Some(etag);
    }
    let identity_etag = identity_etag.unwrap();
    let revalidated = get(None, Some(&identity_etag)).await.unwrap();
    assert_eq!(revalidated.status(), 304, "{url} (identity)");

    if on_disk.len() < 1024 {
        // A tiny file is compressed only when that saves something
        // (build.rs decides); the large ones below must be.
        return;
    }
    let br = get(Some("gzip, br"), None).await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br", "{url}");
    assert_eq!(br.headers()["vary"], "accept-encoding");
    let etag = br.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, identity_etag);
    let compressed = br.bytes().await.unwrap();
    assert!(compressed.len() < on_disk.len());
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&compressed[..], 4096)
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, on_disk, "{url} (brotli)");

    let gz = get(Some("gzip"), None).await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip", "{url}");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, on_disk, "{url} (gzip)");

    let revalidated = get(Some("br"), Some(&etag)).await.unwrap();
    assert_eq!(revalidated.status(), 304, "{url}");
    // The brotli ETag does not validate the identity representation.
    let other = get(None, Some(&etag)).await.unwrap();
    assert_eq!(other.status(), 200, "{url}");
}

/// Every operation the served document names is answered by the live host
/// as the document says (a status it lists, with a body that fits), and
/// never by the catch-all 404 or a 405: the document and what is served agree.
/// The probes send no body, which the document refuses for some operations.
#[tokio::test]
async fn the_served_openapi_document_matches_the_live_routes() {
    let (_app, host) = start();
    let response = host
        .client()
        .get(host.url("/openapi.json"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text();
    let on_disk = std::fs::read_to_string(repo_root().join("components/api/openapi.json")).unwrap();
    assert_eq!(text, on_disk);
    let doc: Value = serde_json::from_str(&text).unwrap();

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let url = host.url(&path.replace("{id}", "1"));
            // The contract check fails an undocumented status or body.
            let response = host
                .client()
                .request(method.clone(), &url)
                .checked()
                .invalid_request()
                .send()
                .await;
            let status = response.status().as_u16();
            let body = response.text();
            assert!(operation["responses"].get(status.to_string()).is_some());
            assert!(
                status != 405 && body != r#"{"detail":"Not Found"}"#,
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, nexa_api::routes::ROUTES.len());
}

#[tokio::test]
async fn the_api_docs_page_loads_its_assets() {
    let (_app, host) = start();
    let response = host
        .client()
        .get(host.url("/api-docs"))
        .checked()
        .send()
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text();
    let on_disk = std::fs::read_to_string(repo_root().join("frontend/dist/api-docs.html")).unwrap();
    assert_eq!(html, on_disk);
    let urls = asset_urls(&html);
    assert!(!urls.is_empty(), "{html}");
    for url in urls {
        // Swagger UI's bundle is the largest asset: its identity form is
        // inflated on request like the others.
        assert_asset_served_as_built(&host, &url).await;
    }
    let post = host
        .client()
        .post(host.url("/api-docs"))
        .checked()
        .send()
        .await;
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

/// The component with everything it embeds fits in 2 MiB (it was 3.6 MB when
/// each asset was embedded as identity, gzip and brotli).
#[test]
fn the_fallback_component_is_at_most_2_mib() {
    let wasm = component("fallback");
    let size = std::fs::metadata(&wasm).unwrap().len();
    println!("{}: {size} bytes", wasm.display());
    assert!(size <= 2 * 1024 * 1024, "{}: {size} bytes", wasm.display());
}

/// What a browser downloads to show the dashboard the first time: index.html
/// and the scripts and stylesheets it references, brotli-encoded. Printed
/// for the record; every part must come brotli-encoded.
#[tokio::test]
async fn the_dashboard_first_load_is_served_as_brotli() {
    let (_app, host) = start();
    let get = |url: String| {
        host.client()
            .get(host.url(&url))
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .send()
    };
    let index = std::fs::read_to_string(repo_root().join("frontend/dist/index.html")).unwrap();
    let mut urls = vec!["/".to_string()];
    urls.extend(
        asset_urls(&index)
            .into_iter()
            .filter(|u| u.ends_with(".js") || u.ends_with(".css")),
    );
    let (mut served, mut identity) = (0, 0);
    for url in urls {
        let file = if url == "/" { "index.html" } else { &url[1..] };
        identity += std::fs::metadata(repo_root().join("frontend/dist").join(file))
            .unwrap()
            .len();
        let response = get(url.clone()).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-encoding"], "br", "{url}");
        let bytes = response.bytes().await.unwrap().len() as u64;
        println!("{url}: {bytes} bytes as brotli");
        served += bytes;
    }
    println!("dashboard first load: {served} bytes as brotli ({identity} bytes as built)");
}
