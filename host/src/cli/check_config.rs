//! `nexa check-config`: an audit of a deployment's settings, from its files
//! alone: secrets that are missing, shipped defaults or short; the
//! development admin password; CORS and outbound-host wildcards; open
//! registration; missing limits; and, in a Compose file, database ports
//! published to every interface, containers running as root and databases
//! without a password. Each finding has a stable rule id, a severity, the
//! file and key, and what to do. Exit status 1 on any error (with
//! `--strict`, on any finding).

use std::fmt::Write as _;

use serde::Serialize;

use super::deployment::{ComposeFile, Deployment, DeploymentArgs, VariableSource};
use crate::admin::AdminListen;
use crate::capabilities::allowed_hosts::entry_parts;
use crate::capabilities::variables::{Template, VariablesProviderSection};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: DeploymentArgs,
    /// Exit with status 1 on warnings too, not only on errors.
    #[arg(long)]
    pub strict: bool,
    /// Print JSON (`findings` with `rule`, `severity`, `where`, `message`;
    /// `errors`; `warnings`) instead of sentences.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable, for scripts: `default-secret`, `cors-wildcard`, ...
    pub rule: &'static str,
    pub severity: Severity,
    /// The file and key (or environment variable) to change.
    #[serde(rename = "where")]
    pub place: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// The admin password `runtime-config.dev.toml` ships (a unit test keeps
/// the two in step).
const DEV_ADMIN_PASSWORD: &str = "admin-dev-password";

/// The shortest signing secret the API components accept
/// (`MIN_SECRET_BYTES` in components/api/src/auth/jwt.rs): shorter, and
/// every token request fails.
const MIN_SIGNING_SECRET_BYTES: usize = 32;

/// Below this, a password or token is guessable.
const MIN_PASSWORD_CHARS: usize = 16;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let deployment = Deployment::load(&args.files)?;
    let findings = audit(&deployment);
    let errors = count(&findings, Severity::Error);
    let warnings = count(&findings, Severity::Warning);
    if args.json {
        let report = serde_json::json!({
            "files": checked_files(&deployment),
            "findings": findings,
            "errors": errors,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report(&deployment, &findings));
    }
    if errors > 0 || (args.strict && warnings > 0) {
        anyhow::bail!(
            "check-config: {}: fix them as each finding says{}",
            tally(errors, warnings),
            if errors == 0 {
                " (--strict fails on warnings too)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Every finding of every rule, errors first, then by rule and place.
pub fn audit(d: &Deployment) -> Vec<Finding> {
    let mut findings = Vec::new();
    variables(d, &mut findings);
    host_config(d, &mut findings);
    outbound_hosts(d, &mut findings);
    if let Some(compose) = &d.compose {
        compose_services(compose, &mut findings);
    }
    sort(&mut findings);
    findings
}

fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| (a.severity, a.rule, &a.place).cmp(&(b.severity, b.rule, &b.place)));
}

fn finding(rule: &'static str, severity: Severity, place: String, message: String) -> Finding {
    Finding {
        rule,
        severity,
        place,
        message,
    }
}

/// Named like a secret, for variables not declared `secret = true`.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "api_key", "private_key"]
        .iter()
        .any(|suffix| name == *suffix || name.ends_with(&format!("_{suffix}")))
}

/// Values that are examples, development defaults or the first guess.
fn is_placeholder(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    const PARTS: &[&str] = &[
        "change-me",
        "changeme",
        "change_me",
        "dev-only",
        "placeholder",
        "insecure",
        "example",
        "not-a-secret",
    ];
    const WHOLE: &[&str] = &[
        "secret", "password", "admin", "root", "postgres", "changeit", "123456", "letmein",
        "default", "test",
    ];
    PARTS.iter().any(|part| value.contains(part)) || WHOLE.contains(&value.as_str())
}

/// App variables: missing values, the secrets' quality, open registration,
/// the database role.
fn variables(d: &Deployment, findings: &mut Vec<Finding>) {
    for (name, decl) in &d.manifest.manifest.variables {
        let Some(resolved) = d.variable(name) else {
            continue;
        };
        let place = d.variable_place(name, &resolved.source);
        let upper = name.to_ascii_uppercase();
        let Some(value) = resolved.value else {
            findings.push(finding(
                "variable-missing",
                Severity::Error,
                place,
                format!(
                    "{name} is required and has no value, so `nexa up` refuses to start: set SPIN_VARIABLE_{upper} (or give it a value in a [[variables_provider]])"
                ),
            ));
            continue;
        };
        if (decl.secret || is_secret_name(name))
            && let Some(problem) = secret_problem(d, name, &value, &resolved.source, place)
        {
            findings.push(problem);
        }
        if name == "allow_registration" && value.trim() == "true" && is_read_by_a_component(d, name)
        {
            findings.push(finding(
                "registration-open",
                Severity::Warning,
                d.variable_place(name, &resolved.source),
                format!(
                    "anyone can create an account (POST /users): set SPIN_VARIABLE_{upper}=false unless sign-up is meant to be open (admins can still create users)"
                ),
            ));
        }
        if let Ok(url) = url::Url::parse(value.trim())
            && matches!(url.scheme(), "postgres" | "postgresql" | "mysql")
            && matches!(url.username(), "postgres" | "root")
        {
            findings.push(finding(
                "database-superuser",
                Severity::Warning,
                d.variable_place(name, &resolved.source),
                format!(
                    "{name} connects as the database superuser `{}`: create a role that owns only the app's database and connect as it",
                    url.username()
                ),
            ));
        }
    }
}

/// The worst thing about one secret's value, if anything: one finding per
/// secret, so that the advice is not repeated.
fn secret_problem(
    d: &Deployment,
    name: &str,
    value: &str,
    source: &VariableSource,
    place: String,
) -> Option<Finding> {
    let upper = name.to_ascii_uppercase();
    let set_it =
        format!("set SPIN_VARIABLE_{upper} to a long random value (e.g. `openssl rand -hex 32`)");
    if name == "admin_password" && value == DEV_ADMIN_PASSWORD {
        return Some(finding(
            "dev-admin-password",
            Severity::Error,
            place,
            format!(
                "admin_password is the development password runtime-config.dev.toml ships: anyone who has read the repository can log in as admin. Use a runtime config without it and {set_it}"
            ),
        ));
    }
    if *source == VariableSource::Default {
        return Some(finding(
            "default-secret",
            Severity::Error,
            place,
            format!(
                "{name} is a secret with a default in the manifest, which every copy of the app carries: make it `required = true, secret = true` without a default and {set_it}"
            ),
        ));
    }
    if is_placeholder(value) {
        return Some(finding(
            "default-secret",
            Severity::Error,
            place,
            format!(
                "{name} is a development or example value (it reads like a placeholder): {set_it}"
            ),
        ));
    }
    let signing = name.ends_with("secret");
    let (minimum, severity) = if signing {
        (MIN_SIGNING_SECRET_BYTES, Severity::Error)
    } else {
        (MIN_PASSWORD_CHARS, Severity::Warning)
    };
    if value.len() < minimum {
        let consequence = if signing {
            " (the API refuses shorter signing secrets: every login would fail)"
        } else {
            ""
        };
        return Some(finding(
            "short-secret",
            severity,
            place,
            format!(
                "{name} is {} bytes long; use at least {minimum}{consequence}: {set_it}",
                value.len()
            ),
        ));
    }
    if let VariableSource::Provider(index) = source
        && matches!(
            d.runtime.config.variables_provider.get(*index),
            Some(VariablesProviderSection::Static { .. })
        )
    {
        return Some(finding(
            "secret-in-file",
            Severity::Warning,
            place,
            format!(
                "{name} is written in the runtime config, in plain text, and a static value wins over SPIN_VARIABLE_{upper} (providers come before the environment): keep secrets out of the file and set them in the environment"
            ),
        ));
    }
    None
}

/// Whether a component's `variables` template reads this app variable.
fn is_read_by_a_component(d: &Deployment, name: &str) -> bool {
    d.manifest.manifest.component.values().any(|component| {
        component
            .variables
            .values()
            .any(|text| Template::parse(text).is_ok_and(|t| t.variables().any(|read| read == name)))
    })
}

/// nexa.toml: what `nexa up` refuses, CORS wildcards, rate limits, limits,
/// the admin listener.
fn host_config(d: &Deployment, findings: &mut Vec<Finding>) {
    let host = &d.host.config;
    let file = d.host_name();
    if let Some(reason) = &d.host.refused {
        findings.push(finding(
            "host-config-refused",
            Severity::Error,
            file.clone(),
            format!("{reason}: `nexa up` refuses to start with it"),
        ));
    }
    for (index, origin) in host.cors.allowed_origins.iter().enumerate() {
        if origin.contains('*') {
            findings.push(finding(
                "cors-wildcard",
                Severity::Error,
                format!("{file}: cors.allowed_origins[{index}]"),
                format!(
                    "{origin:?} is a wildcard: origins are granted with credentials and matched exactly (`nexa up` refuses \"*\"; \"https://*.example.com\" matches no page). List each origin whose pages call the API, e.g. \"https://app.example.com\""
                ),
            ));
        }
    }
    if !host.rate_limit.enabled {
        findings.push(finding(
            "rate-limit-off",
            Severity::Error,
            format!("{file}: rate_limit.enabled"),
            "rate limits are off: passwords can be guessed and accounts created without limit. Remove `enabled = false` (only benchmarks turn them off)".to_string(),
        ));
    }
    if d.host.path.is_none() {
        findings.push(finding(
            "limits-missing",
            Severity::Warning,
            format!("{} (no nexa.toml beside it)", d.manifest_name()),
            "no nexa.toml: every limit is its default and no component has a concurrency limit of its own. Start from the repository's nexa.toml, or pass --host-config-file".to_string(),
        ));
    }
    for (id, component) in &d.manifest.manifest.component {
        // bcrypt takes a core per login: without a limit of its own, a
        // burst of logins starves every other request.
        if component.variables.contains_key("bcrypt_cost") && !host.component.contains_key(id) {
            findings.push(finding(
                "limits-missing",
                Severity::Warning,
                format!("{file}: component.{id}"),
                format!(
                    "component {id} hashes passwords (it is given bcrypt_cost) but has no concurrency limit of its own: add [component.{id}] max_concurrent_requests = 1 (and a queue_timeout_ms) so that a burst of password hashing cannot take every core"
                ),
            ));
        }
    }
    if let Some(listen) = &host.admin_listen
        && let Ok(AdminListen::At(address)) = listen.parse::<AdminListen>()
        && address.ip().is_unspecified()
    {
        findings.push(finding(
            "admin-listen-public",
            Severity::Warning,
            format!("{file}: admin_listen"),
            format!(
                "the admin listener ({address}: /metrics and /admin/) listens on every interface: bind it to 127.0.0.1 or a private address"
            ),
        ));
    }
}

/// `allowed_outbound_hosts` entries with wildcards, rendered as `nexa up`
/// renders them.
fn outbound_hosts(d: &Deployment, findings: &mut Vec<Finding>) {
    for (id, component) in &d.manifest.manifest.component {
        for (index, entry) in component.allowed_outbound_hosts.iter().enumerate() {
            let rendered = d.render(entry).unwrap_or_else(|| entry.clone());
            let Some((scheme, host, port)) = entry_parts(rendered.trim()) else {
                continue;
            };
            let mut wide = Vec::new();
            if scheme == "*" {
                wide.push("any protocol");
            }
            if host == "*" {
                wide.push("any host");
            } else if host.starts_with("*.") {
                wide.push("any subdomain");
            }
            if port.is_some_and(|p| p == "*" || p.contains("..")) {
                wide.push("a range of ports");
            }
            if wide.is_empty() {
                continue;
            }
            let severity = if host == "*" {
                Severity::Error
            } else {
                Severity::Warning
            };
            findings.push(finding(
                "wildcard-outbound-host",
                severity,
                format!(
                    "{}: component.{id}.allowed_outbound_hosts[{index}]",
                    d.manifest_name()
                ),
                format!(
                    "{rendered:?} lets component {id} reach {}: name each host and port it needs (e.g. \"postgres://db.internal:5432\")",
                    wide.join(", ")
                ),
            ));
        }
    }
}

/// Images of databases and caches, and their well-known ports.
const DATABASE_IMAGES: &[&str] = &[
    "postgres",
    "postgis",
    "timescaledb",
    "mysql",
    "mariadb",
    "mongo",
    "redis",
    "valkey",
    "keydb",
    "memcached",
    "cockroach",
];
const DATABASE_PORTS: &[&str] = &["5432", "3306", "6379", "27017", "11211", "26257"];

/// Compose: published database ports, root users, database passwords.
fn compose_services(compose: &ComposeFile, findings: &mut Vec<Finding>) {
    let file = compose.name();
    for (name, service) in &compose.services {
        let at = |key: &str| format!("{file}: services.{name}.{key}");
        let is_database = service
            .image_name()
            .is_some_and(|image| DATABASE_IMAGES.contains(&image));
        for (index, port) in service.ports().iter().enumerate() {
            let database_port = is_database || DATABASE_PORTS.contains(&port.target.as_str());
            if database_port && port.on_every_interface() {
                findings.push(finding(
                    "published-database-port",
                    Severity::Error,
                    at(&format!("ports[{index}]")),
                    format!(
                        "{name} publishes port {} on every interface of the machine: drop it from `ports:` (the app reaches {name} over the Compose network) or bind it to loopback (\"127.0.0.1:{}:{}\")",
                        port.target,
                        port.published.as_deref().unwrap_or(&port.target),
                        port.target
                    ),
                ));
            }
        }
        let root = service.user().is_some_and(|user| {
            let who = user.split(':').next().unwrap_or(&user);
            who == "root" || who == "0"
        });
        if root {
            findings.push(finding(
                "root-user",
                Severity::Error,
                at("user"),
                format!("{name} runs as root: set `user:` to an unprivileged user (or remove it if the image drops root itself)"),
            ));
        }
        if service.privileged {
            findings.push(finding(
                "root-user",
                Severity::Error,
                at("privileged"),
                format!("{name} is privileged (root with every capability of the machine): remove `privileged: true`"),
            ));
        }
        for (key, value) in service.environment() {
            let place = at(&format!("environment.{key}"));
            let upper = key.to_ascii_uppercase();
            if (upper == "POSTGRES_HOST_AUTH_METHOD" && value.eq_ignore_ascii_case("trust"))
                || (upper.ends_with("ALLOW_EMPTY_PASSWORD")
                    && matches!(value.to_ascii_lowercase().as_str(), "yes" | "true" | "1"))
            {
                findings.push(finding(
                    "database-no-password",
                    Severity::Error,
                    place.clone(),
                    format!("{name} lets clients in without a password ({key}={value}): remove it and set a password"),
                ));
            }
            let secret = ["PASSWORD", "SECRET", "TOKEN"]
                .iter()
                .any(|suffix| upper.ends_with(suffix));
            // `${VAR}` comes from the environment Compose runs in: not in the file.
            if !secret || value.contains("${") || value.is_empty() {
                continue;
            }
            if is_placeholder(&value) {
                findings.push(finding(
                    "default-secret",
                    Severity::Error,
                    place,
                    format!("{key} of {name} is a default or example value: generate one (e.g. `openssl rand -hex 24`) and pass it as ${{{upper}}} from the environment or a secret"),
                ));
            } else if value.len() < MIN_PASSWORD_CHARS {
                findings.push(finding(
                    "short-secret",
                    Severity::Warning,
                    place,
                    format!("{key} of {name} is {} characters long; use at least {MIN_PASSWORD_CHARS}, from the environment rather than the file", value.len()),
                ));
            }
        }
    }
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn tally(errors: usize, warnings: usize) -> String {
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn checked_files(d: &Deployment) -> serde_json::Value {
    serde_json::json!({
        "manifest": d.manifest_name(),
        "runtime_config": d.runtime.path.as_deref().map(|p| p.display().to_string()),
        "host_config": d.host.path.as_deref().map(|p| p.display().to_string()),
        "compose": d.compose.as_ref().map(ComposeFile::name),
    })
}

/// The findings for people: one paragraph each, then a summary.
fn report(d: &Deployment, findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let severity = match f.severity {
            Severity::Error => console::style("error  ").red().bold(),
            Severity::Warning => console::style("warning").yellow().bold(),
        };
        let _ = writeln!(
            out,
            "{severity}  {}  {}\n         {}\n",
            console::style(f.rule).bold(),
            f.place,
            f.message
        );
    }
    let mut files = vec![d.manifest_name()];
    files.extend(d.runtime.path.as_deref().map(|p| p.display().to_string()));
    files.extend(d.host.path.as_deref().map(|p| p.display().to_string()));
    files.extend(d.compose.as_ref().map(ComposeFile::name));
    let files = files.join(", ");
    if findings.is_empty() {
        let _ = writeln!(out, "No findings in {files}.");
        return out;
    }
    let errors = count(findings, Severity::Error);
    let warnings = count(findings, Severity::Warning);
    let _ = writeln!(out, "{} in {files}.", tally(errors, warnings));
    if findings.iter().any(|f| f.rule == "dev-admin-password") {
        let _ = writeln!(
            out,
            "These are the development defaults (the repository's runtime-config.dev.toml): expected on a laptop, not in a deployment. For one, use a runtime config without those values and set the secrets as SPIN_VARIABLE_* (see \"Configuration files\" in the README)."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_admin_password_is_the_one_the_repository_ships() {
        let dev =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime-config.dev.toml");
        let text = std::fs::read_to_string(dev).unwrap();
        assert!(
            text.contains(&format!("admin_password = \"{DEV_ADMIN_PASSWORD}\"")),
            "runtime-config.dev.toml's admin_password changed: update DEV_ADMIN_PASSWORD"
        );
    }

    #[test]
    fn secrets_are_recognised_by_name() {
        for name in [
            "jwt_secret",
            "admin_password",
            "api_token",
            "stripe_api_key",
            "secret",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "access_token_ttl_seconds",
            "secretary",
            "db_host",
            "bcrypt_cost",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(is_placeholder("dev-only-secret-change-me-0123456789abcdef"));
        assert!(is_placeholder("Postgres"));
        assert!(is_placeholder("an-example-value"));
        assert!(!is_placeholder("q8Z1v0Xr4mJ2nK7pT5yW9bC3dF6gH0jL"));
    }

    #[test]
    fn findings_sort_errors_first_then_by_rule_and_place() {
        let mut findings = [
            finding("b", Severity::Warning, "x".into(), String::new()),
            finding("z", Severity::Error, "y".into(), String::new()),
            finding("a", Severity::Error, "y".into(), String::new()),
        ];
        sort(&mut findings);
        let order: Vec<&str> = findings.iter().map(|f| f.rule).collect();
        assert_eq!(order, ["a", "z", "b"]);
        assert_eq!(tally(1, 2), "1 error, 2 warnings");
    }
}
