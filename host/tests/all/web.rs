//! The catch-all component as a browser and an API client meet it: the
//! embedded dashboard (index at `/` and client routes, hashed assets with
//! long caching and precompressed forms), the OpenAPI document checked
//! against the live host, and the API docs page.

use std::io::Read;

use serde_json::Value;

use crate::contract::Contract;
use crate::support::{Host, rc_args, repo_app, repo_root};

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
        let on_disk = std::fs::read(repo_root().join("frontend/dist").join(&url[1..])).unwrap();
        let get = |encoding: &'static str| {
            host.client()
                .get(host.url(&url))
                .header("accept-encoding", encoding)
                .send()
        };
        let plain = get("identity").await.unwrap();
        assert_eq!(plain.status(), 200, "{url}");
        assert_eq!(
            plain.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let expected_type = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?}: {url}"),
        };
        assert_eq!(plain.headers()["content-type"], expected_type, "{url}");
        assert!(!plain.headers().contains_key("content-encoding"));
        assert_eq!(plain.bytes().await.unwrap(), on_disk, "{url}");

        if on_disk.len() < 1024 {
            // A tiny file is compressed only when that saves something
            // (build.rs decides); the large ones below must be.
            continue;
        }
        let br = get("gzip, br").await.unwrap();
        assert_eq!(br.headers()["content-encoding"], "br", "{url}");
        assert_eq!(br.headers()["vary"], "accept-encoding");
        let etag = br.headers()["etag"].to_str().unwrap().to_string();
        let compressed = br.bytes().await.unwrap();
        assert!(compressed.len() < on_disk.len());
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&compressed[..], 4096)
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, on_disk, "{url} (brotli)");

        let gz = get("gzip").await.unwrap();
        assert_eq!(gz.headers()["content-encoding"], "gzip", "{url}");
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, on_disk, "{url} (gzip)");

        let revalidated = host
            .client()
            .get(host.url(&url))
            .header("accept-encoding", "br")
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304, "{url}");
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
    let urls = asset_urls(&html);
    assert!(!urls.is_empty(), "{html}");
    for url in urls {
        let asset = host.client().get(host.url(&url)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{url}");
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
