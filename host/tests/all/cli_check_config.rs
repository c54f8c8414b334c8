//! `nexa check-config`: a hardened deployment passes with exit status 0,
//! and each rule has a change to it that triggers that rule (and no other),
//! with the expected severity, place and exit status. The repository's own
//! development files are findings, reported as such.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::cli_graph::run_offline;
use crate::support::{AppDir, repo_root};

const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "shop"
[variables]
jwt_secret = { required = true, secret = true }
admin_password = { required = true, secret = true }
database_url = { required = true, secret = true }
allow_registration = { default = "false" }
bcrypt_cost = { default = "12" }
db_host = { default = "db" }
[[trigger.http]]
route = "/auth/..."
component = "auth"
[[trigger.http]]
route = "/users/..."
component = "users"
[component.auth]
source = "auth.wasm"
allowed_outbound_hosts = ["postgres://{{ db_host }}:5432"]
[component.auth.variables]
jwt_secret = "{{ jwt_secret }}"
admin_password = "{{ admin_password }}"
bcrypt_cost = "{{ bcrypt_cost }}"
database_url = "{{ database_url }}"
[component.users]
source = "users.wasm"
allowed_outbound_hosts = ["postgres://{{ db_host }}:5432"]
[component.users.variables]
allow_registration = "{{ allow_registration }}"
database_url = "{{ database_url }}"
"#;

const NEXA_TOML: &str = r#"admin_listen = "127.0.0.1:9464"
[component.auth]
max_concurrent_requests = 1
queue_timeout_ms = 30000
[cors]
allowed_origins = ["https://shop.test"]
"#;

const RUNTIME_CONFIG: &str = r#"
[key_value_store.default]
type = "redis"
url = "redis://cache:6379"
"#;

const COMPOSE: &str = r#"
services:
  db:
    image: postgres:16
    user: postgres
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
    ports:
      - "127.0.0.1:5432:5432"
  cache:
    image: redis:7
    expose: ["6379"]
"#;

/// A deployment's files and environment, hardened unless a case changes it.
#[derive(Clone)]
struct Deployment {
    manifest: String,
    nexa_toml: Option<String>,
    runtime_config: String,
    compose: String,
    env: Vec<(&'static str, String)>,
}

impl Deployment {
    fn hardened() -> Self {
        Self {
            manifest: MANIFEST.to_string(),
            nexa_toml: Some(NEXA_TOML.to_string()),
            runtime_config: RUNTIME_CONFIG.to_string(),
            compose: COMPOSE.to_string(),
            env: vec![
                (
                    "SPIN_VARIABLE_JWT_SECRET",
                    "q8Z1v0Xr4mJ2nK7pT5yW9bC3dF6gH0jLx2".into(),
                ),
                (
                    "SPIN_VARIABLE_ADMIN_PASSWORD",
                    "Tz4-mQ9v-Lr2x-Wc7k-Pb5n".into(),
                ),
                (
                    "SPIN_VARIABLE_DATABASE_URL",
                    "postgres://shop:Vb8-Kq2r-Xm5t@db:5432/shop".into(),
                ),
            ],
        }
    }

    fn set_env(mut self, name: &'static str, value: &str) -> Self {
        self.env.retain(|(n, _)| *n != name);
        self.env.push((name, value.to_string()));
        self
    }

    fn edit(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "{from:?} is not in\n{text}");
        text.replace(from, to)
    }

    /// Runs `nexa check-config --json` (plus `extra`) on these files:
    /// nexa.toml and compose/compose.yaml where `nexa up` and the command
    /// look for them by default.
    fn check(&self, extra: &[&str]) -> (i32, Value) {
        let app = AppDir::new(&self.manifest);
        match &self.nexa_toml {
            Some(text) => std::fs::write(app.path("nexa.toml"), text).unwrap(),
            None => std::fs::remove_file(app.path("nexa.toml")).unwrap(),
        }
        std::fs::write(app.path("rc.toml"), &self.runtime_config).unwrap();
        std::fs::create_dir_all(app.path("compose")).unwrap();
        std::fs::write(app.path("compose/compose.yaml"), &self.compose).unwrap();
        let manifest = app.path("spin.toml").display().to_string();
        let rc = app.path("rc.toml").display().to_string();
        let mut args = vec![
            "check-config",
            "--json",
            "-f",
            &manifest,
            "--runtime-config-file",
            &rc,
        ];
        args.extend(extra);
        let env: Vec<(&str, &str)> = self.env.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let output = run_offline(&args, &env);
        let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), json)
    }
}

fn rules(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_hardened_deployment_has_no_findings() {
    let (code, report) = Deployment::hardened().check(&["--strict"]);
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    assert_eq!(code, 0);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["warnings"], 0);
    // It read every file, compose/compose.yaml and nexa.toml by default.
    let files = &report["files"];
    assert!(
        files["host_config"]
            .as_str()
            .unwrap()
            .ends_with("nexa.toml"),
        "{files}"
    );
    assert!(
        files["compose"]
            .as_str()
            .unwrap()
            .ends_with("compose/compose.yaml"),
        "{files}"
    );
}

/// One case: a change to the hardened deployment and the finding it must
/// give, and no other.
struct Case {
    rule: &'static str,
    severity: &'static str,
    place: &'static str,
    deployment: Deployment,
}

fn cases() -> Vec<Case> {
    let hardened = Deployment::hardened;
    let with = |change: fn(&mut Deployment)| {
        let mut d = hardened();
        change(&mut d);
        d
    };
    let strong_secret = "Jw7-p2Lq-Xr9v-Mz4k-Tb6n-Qc1s-Hd8f";
    vec![
        Case {
            rule: "variable-missing",
            severity: "error",
            place: "spin.toml: variables.admin_password",
            deployment: with(|d| d.env.retain(|(n, _)| *n != "SPIN_VARIABLE_ADMIN_PASSWORD")),
        },
        Case {
            rule: "dev-admin-password",
            severity: "error",
            place: "rc.toml: variables_provider[0].values.admin_password",
            deployment: with(|d| {
                d.runtime_config.push_str(
                    "[[variables_provider]]\ntype = \"static\"\nvalues = { admin_password = \"admin-dev-password\" }\n",
                )
            }),
        },
        Case {
            rule: "default-secret",
            severity: "error",
            place: "spin.toml: variables.jwt_secret",
            deployment: with(|d| {
                d.manifest = Deployment::edit(
                    &d.manifest,
                    "jwt_secret = { required = true, secret = true }",
                    "jwt_secret = { default = \"Jw7-p2Lq-Xr9v-Mz4k-Tb6n-Qc1s-Hd8f\", secret = true }",
                );
                d.env.retain(|(n, _)| *n != "SPIN_VARIABLE_JWT_SECRET");
            }),
        },
        Case {
            rule: "default-secret",
            severity: "error",
            place: "environment: SPIN_VARIABLE_JWT_SECRET",
            deployment: hardened().set_env(
                "SPIN_VARIABLE_JWT_SECRET",
                "dev-only-secret-change-me-0123456789abcdef",
            ),
        },
        Case {
            rule: "short-secret",
            severity: "error",
            place: "environment: SPIN_VARIABLE_JWT_SECRET",
            deployment: hardened().set_env("SPIN_VARIABLE_JWT_SECRET", "Q7r-random-but-short"),
        },
        Case {
            rule: "short-secret",
            severity: "warning",
            place: "environment: SPIN_VARIABLE_ADMIN_PASSWORD",
            deployment: hardened().set_env("SPIN_VARIABLE_ADMIN_PASSWORD", "Zq7-Lm2x"),
        },
        Case {
            rule: "secret-in-file",
            severity: "warning",
            place: "rc.toml: variables_provider[0].values.jwt_secret",
            deployment: {
                let mut d = hardened();
                d.runtime_config.push_str(&format!(
                    "[[variables_provider]]\ntype = \"static\"\nvalues = {{ jwt_secret = \"{strong_secret}\" }}\n"
                ));
                d
            },
        },
        Case {
            rule: "registration-open",
            severity: "warning",
            place: "environment: SPIN_VARIABLE_ALLOW_REGISTRATION",
            deployment: hardened().set_env("SPIN_VARIABLE_ALLOW_REGISTRATION", "true"),
        },
        Case {
            rule: "database-superuser",
            severity: "warning",
            place: "environment: SPIN_VARIABLE_DATABASE_URL",
            deployment: hardened().set_env(
                "SPIN_VARIABLE_DATABASE_URL",
                "postgres://postgres:Vb8-Kq2r-Xm5t@db:5432/shop",
            ),
        },
        Case {
            rule: "host-config-refused",
            severity: "error",
            place: "nexa.toml",
            deployment: with(|d| {
                d.nexa_toml = Some(format!("public_url = \"shop.test\"\n{NEXA_TOML}"))
            }),
        },
        Case {
            rule: "cors-wildcard",
            severity: "error",
            place: "nexa.toml: cors.allowed_origins[0]",
            deployment: with(|d| {
                d.nexa_toml = Some(Deployment::edit(
                    NEXA_TOML,
                    "\"https://shop.test\"",
                    "\"*\"",
                ))
            }),
        },
        Case {
            rule: "cors-wildcard",
            severity: "error",
            place: "nexa.toml: cors.allowed_origins[1]",
            deployment: with(|d| {
                d.nexa_toml = Some(Deployment::edit(
                    NEXA_TOML,
                    "\"https://shop.test\"",
                    "\"https://shop.test\", \"https://*.shop.test\"",
                ))
            }),
        },
        Case {
            rule: "rate-limit-off",
            severity: "error",
            place: "nexa.toml: rate_limit.enabled",
            deployment: with(|d| {
                d.nexa_toml = Some(format!("{NEXA_TOML}[rate_limit]\nenabled = false\n"))
            }),
        },
        Case {
            rule: "limits-missing",
            severity: "warning",
            place: "(no nexa.toml beside it)",
            deployment: with(|d| d.nexa_toml = None),
        },
        Case {
            rule: "limits-missing",
            severity: "warning",
            place: "nexa.toml: component.auth",
            deployment: with(|d| {
                d.nexa_toml = Some(Deployment::edit(
                    NEXA_TOML,
                    "[component.auth]\nmax_concurrent_requests = 1\nqueue_timeout_ms = 30000\n",
                    "",
                ))
            }),
        },
        Case {
            rule: "admin-listen-public",
            severity: "warning",
            place: "nexa.toml: admin_listen",
            deployment: with(|d| {
                d.nexa_toml = Some(Deployment::edit(
                    NEXA_TOML,
                    "127.0.0.1:9464",
                    "0.0.0.0:9464",
                ))
            }),
        },
        Case {
            rule: "wildcard-outbound-host",
            severity: "error",
            place: "spin.toml: component.users.allowed_outbound_hosts[1]",
            deployment: with(|d| {
                d.manifest = Deployment::edit(
                    &d.manifest,
                    "source = \"users.wasm\"\nallowed_outbound_hosts = [\"postgres://{{ db_host }}:5432\"",
                    "source = \"users.wasm\"\nallowed_outbound_hosts = [\"postgres://{{ db_host }}:5432\", \"*://*:*\"",
                )
            }),
        },
        Case {
            rule: "wildcard-outbound-host",
            severity: "warning",
            place: "spin.toml: component.auth.allowed_outbound_hosts[0]",
            deployment: with(|d| {
                d.manifest = Deployment::edit(
                    &d.manifest,
                    "source = \"auth.wasm\"\nallowed_outbound_hosts = [\"postgres://{{ db_host }}:5432\"",
                    "source = \"auth.wasm\"\nallowed_outbound_hosts = [\"https://*.payments.test\"",
                )
            }),
        },
        Case {
            rule: "published-database-port",
            severity: "error",
            place: "compose.yaml: services.db.ports[0]",
            deployment: with(|d| {
                d.compose = Deployment::edit(&d.compose, "\"127.0.0.1:5432:5432\"", "\"5432:5432\"")
            }),
        },
        Case {
            rule: "published-database-port",
            severity: "error",
            place: "compose.yaml: services.cache.ports[0]",
            deployment: with(|d| {
                d.compose = Deployment::edit(&d.compose, "expose: [\"6379\"]", "ports: [6379]")
            }),
        },
        Case {
            rule: "root-user",
            severity: "error",
            place: "compose.yaml: services.db.user",
            deployment: with(|d| {
                d.compose = Deployment::edit(&d.compose, "user: postgres", "user: \"0:0\"")
            }),
        },
        Case {
            rule: "root-user",
            severity: "error",
            place: "compose.yaml: services.cache.privileged",
            deployment: with(|d| {
                d.compose = Deployment::edit(
                    &d.compose,
                    "image: redis:7",
                    "image: redis:7\n    privileged: true",
                )
            }),
        },
        Case {
            rule: "database-no-password",
            severity: "error",
            place: "compose.yaml: services.db.environment.POSTGRES_HOST_AUTH_METHOD",
            deployment: with(|d| {
                d.compose = Deployment::edit(
                    &d.compose,
                    "POSTGRES_USER: shop",
                    "POSTGRES_USER: shop\n      POSTGRES_HOST_AUTH_METHOD: trust",
                )
            }),
        },
        Case {
            rule: "default-secret",
            severity: "error",
            place: "compose.yaml: services.db.environment.POSTGRES_PASSWORD",
            deployment: with(|d| {
                d.compose = Deployment::edit(&d.compose, "${POSTGRES_PASSWORD}", "postgres")
            }),
        },
        Case {
            rule: "short-secret",
            severity: "warning",
            place: "compose.yaml: services.db.environment.POSTGRES_PASSWORD",
            deployment: with(|d| {
                d.compose = Deployment::edit(&d.compose, "${POSTGRES_PASSWORD}", "Xq7pL2")
            }),
        },
    ]
}

#[test]
fn each_rule_is_triggered_by_its_own_change() {
    for case in cases() {
        let (code, report) = case.deployment.check(&[]);
        let context = format!("rule {} at {}:\n{report:#}", case.rule, case.place);
        assert_eq!(
            rules(&report),
            BTreeSet::from([case.rule.to_string()]),
            "{context}"
        );
        let found = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["where"].as_str().unwrap().ends_with(case.place))
            .unwrap_or_else(|| panic!("no finding at {}: {context}", case.place));
        assert_eq!(found["severity"], case.severity, "{context}");
        let message = found["message"].as_str().unwrap();
        assert!(message.len() > 40, "a message says what to do: {context}");
        // Errors fail the check; warnings only with --strict.
        if case.severity == "error" {
            assert_eq!(code, 1, "{context}");
            assert!(report["errors"].as_u64().unwrap() >= 1, "{context}");
        } else {
            assert_eq!(code, 0, "{context}");
            let (strict, _) = case.deployment.check(&["--strict"]);
            assert_eq!(strict, 1, "--strict: {context}");
        }
    }
}

#[test]
fn no_secret_value_is_printed() {
    let leaky = Deployment::hardened()
        .set_env("SPIN_VARIABLE_ADMIN_PASSWORD", "Zq7-Lm2x")
        .set_env(
            "SPIN_VARIABLE_DATABASE_URL",
            "postgres://postgres:Vb8-Kq2r-Xm5t@db:5432/shop",
        );
    let (_, report) = leaky.check(&[]);
    let text = report.to_string();
    assert_eq!(rules(&report).len(), 2, "{report:#}");
    for secret in ["Zq7-Lm2x", "Vb8-Kq2r-Xm5t"] {
        assert!(!text.contains(secret), "{secret} printed: {text}");
    }
}

fn repo_check(extra: &[&str]) -> (i32, String, String) {
    let root = repo_root();
    let manifest = root.join("spin.toml").display().to_string();
    let mut args = vec!["check-config", "-f", &manifest];
    args.extend(extra);
    let output = run_offline(&args, &[]);
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_repository_development_files_are_findings_said_as_such() {
    let dev = repo_root()
        .join("runtime-config.dev.toml")
        .display()
        .to_string();
    let (code, stdout, stderr) = repo_check(&["--runtime-config-file", &dev]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    for expected in [
        "dev-admin-password",
        "runtime-config.dev.toml: variables_provider[0].values.admin_password",
        "default-secret",
        "runtime-config.dev.toml: variables_provider[0].values.jwt_secret",
        "registration-open",
        // users hashes passwords too (registrations) and has no limit of its own.
        "limits-missing",
        "component.users",
        "2 errors, 2 warnings in",
        "These are the development defaults",
    ] {
        assert!(stdout.contains(expected), "{expected:?} not in\n{stdout}");
    }
    // The values themselves are not repeated.
    assert!(!stdout.contains("admin-dev-password\""), "{stdout}");
    assert!(
        stderr.contains("check-config: 2 errors, 2 warnings"),
        "{stderr}"
    );

    // Without a runtime config the secrets have no value at all, so `nexa up`
    // would not start: that is said too.
    let (code, stdout, _) = repo_check(&["--json"]);
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        rules(&report),
        BTreeSet::from(
            ["limits-missing", "registration-open", "variable-missing"].map(String::from)
        )
    );
    assert_eq!(report["errors"], 2, "{report:#}");
    assert!(
        report["files"]["host_config"]
            .as_str()
            .unwrap()
            .ends_with("nexa.toml")
    );
}

#[test]
fn unreadable_files_fail_with_the_reason_and_usage_errors_with_2() {
    let (code, _, stderr) = repo_check(&["--compose", "/nonexistent/compose.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/compose.yaml"), "{stderr}");
    let (code, _, _) = repo_check(&["--no-such-flag"]);
    assert_eq!(code, 2);
    let mut broken = Deployment::hardened();
    broken.nexa_toml = Some("max_concurrent_requests = 0\n".into());
    let app = AppDir::new(&broken.manifest);
    std::fs::write(app.path("nexa.toml"), broken.nexa_toml.as_deref().unwrap()).unwrap();
    let manifest = app.path("spin.toml").display().to_string();
    let output = run_offline(&["check-config", "-f", &manifest], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_concurrent_requests"), "{stderr}");
}

#[test]
fn the_repository_compose_file_has_no_findings() {
    let compose = repo_root()
        .join("compose/compose.yaml")
        .display()
        .to_string();
    let (_, stdout, stderr) = repo_check(&["--compose", &compose, "--json"]);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    assert!(
        report["files"]["compose"]
            .as_str()
            .unwrap()
            .ends_with("compose/compose.yaml"),
        "{report:#}"
    );
    let about_compose: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["where"].as_str().unwrap().contains("compose"))
        .collect();
    assert!(about_compose.is_empty(), "{about_compose:#?}");
}
