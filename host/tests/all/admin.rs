//! The admin API on the admin listener: off without a token, bearer-token
//! protected with one, and `nexa components list` reading it.

use std::process::Command;

use crate::support::{fixture_app, rc_args, start_with_rc, unique};

const TOKEN: &str = "a-long-random-admin-token-for-tests";

#[tokio::test]
async fn without_a_token_the_admin_api_is_off_and_metrics_stay_up() {
    let app = fixture_app("");
    let host = start_with_rc(&app, &[]);
    let response = reqwest::get(host.admin_url("/admin/components"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("NEXA_ADMIN_TOKEN"),
        "{body}"
    );
    let metrics = reqwest::get(host.admin_url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(host.log().contains("/admin/ off"), "{}", host.log());
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let app = fixture_app("");
    let host = start_with_rc(&app, &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    let client = reqwest::Client::new();
    let url = host.admin_url("/admin/components");

    let missing = client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = missing.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("Bearer"),
        "{body}"
    );

    for wrong in ["wrong", "", &TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}x")] {
        let refused = client.get(&url).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(refused.status(), 401, "token {wrong:?}");
    }
    // Basic auth with the token as password is no bearer token.
    let basic = client
        .get(&url)
        .basic_auth("admin", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);

    let allowed = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    let unknown = client
        .get(host.admin_url("/admin/nothing"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // Without the token, an unknown path is refused like a known one: the
    // API's shape is not disclosed.
    let probing = client
        .get(host.admin_url("/admin/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(probing.status(), 401);
}

#[tokio::test]
async fn a_token_file_named_in_nexa_toml_turns_the_api_on() {
    let app = fixture_app("admin_token_file = \"secrets/admin-token\"\n");
    std::fs::create_dir_all(app.path("secrets")).unwrap();
    app.write("secrets/admin-token", &format!("{TOKEN}\n"));
    let host = start_with_rc(&app, &[]);
    let allowed = reqwest::Client::new()
        .get(host.admin_url("/admin/components"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);

    // An empty token file stops start-up with the reason.
    let empty = fixture_app("admin_token_file = \"token\"\n");
    empty.write("token", "\n");
    let stderr = empty.start_failure(&rc_args(&empty).each_ref().map(String::as_str));
    assert!(
        stderr.contains("admin token") && stderr.contains("empty"),
        "{stderr}"
    );
}

#[tokio::test]
async fn components_report_their_routes_source_and_traffic() {
    let app = fixture_app("");
    let host = start_with_rc(&app, &[("NEXA_ADMIN_TOKEN", TOKEN)]);
    let path = format!("/fixture/{}", unique("admin"));
    for _ in 0..3 {
        let response = reqwest::get(host.url(&path)).await.unwrap();
        assert!(response.status().is_success() || response.status().is_client_error());
    }
    let body: serde_json::Value = reqwest::Client::new()
        .get(host.admin_url("/admin/components"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let components = body["components"].as_array().unwrap();
    let ids: Vec<&str> = components
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fallback", "fixture"]);
    let fixture = &components[1];
    assert_eq!(fixture["routes"], serde_json::json!(["/fixture/..."]));
    assert_eq!(fixture["private"], false);
    let wasm = std::fs::read(crate::support::component("fixture")).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&wasm))
    };
    assert_eq!(fixture["digest"], format!("sha256:{digest}"));
    assert_eq!(fixture["size_bytes"], wasm.len() as u64);
    assert_eq!(fixture["requests_served"], 3);
    assert!(
        fixture["live_instances"].as_i64().unwrap() >= 1,
        "{fixture}"
    );
    assert!(
        fixture["loaded_at"].as_str().unwrap().ends_with('Z'),
        "{fixture}"
    );
    assert_eq!(components[0]["requests_served"], 0);

    // The CLI reads the same, as JSON and as a table.
    let nexa = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nexa"));
        command
            .args(["components", "list", "--admin", &host.admin_url("")])
            .args(args)
            .env_remove("NEXA_ADMIN_TOKEN");
        if let Some(token) = token {
            command.env("NEXA_ADMIN_TOKEN", token);
        }
        command.output().unwrap()
    };
    let json = nexa(&["--json"], Some(TOKEN));
    assert!(json.status.success(), "{json:?}");
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(listed[1]["digest"], format!("sha256:{digest}"));
    assert_eq!(listed[1]["requests_served"], 3);

    let table = nexa(&[], Some(TOKEN));
    assert!(table.status.success(), "{table:?}");
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("DIGEST"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("fixture") && lines[2].contains(&digest[..12]),
        "{text}"
    );

    let refused = nexa(&[], None);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("NEXA_ADMIN_TOKEN"),
        "{stderr}"
    );

    let unreachable = Command::new(env!("CARGO_BIN_EXE_nexa"))
        .args(["components", "list", "--admin", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the admin listener"),
        "{unreachable:?}"
    );
}
