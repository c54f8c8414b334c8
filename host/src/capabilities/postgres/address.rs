//! A guest's Postgres address, parsed strictly into connect options the host
//! builds itself. The allow-list can only vouch for a single TCP host and
//! port, so everything that could send a connection elsewhere (`host=` or
//! `hostaddr=` in the query, several hosts, Unix sockets) or make the host
//! read its own files (`sslkey`, `sslcert`, `sslrootcert`, `passfile`) is
//! refused by name, and nothing comes from the host's `PG*` environment or
//! `~/.pgpass`: every option sqlx would otherwise default from them is set
//! here, and the rest are kept out of the process ([`check_environment`]).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The parameters a guest may pass, in either form, besides host and port.
const ALLOWED_PARAMETERS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "sslmode",
    "connect_timeout",
    "application_name",
];

/// The environment sqlx reads when it builds connect options. Those it reads
/// into fields this module cannot override (certificates, key, server
/// options) must not be set at all; the others are overridden anyway.
pub const SQLX_ENVIRONMENT: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGPASSFILE",
];

/// A parsed connection address: where it points and how to connect.
#[derive(Debug, Clone)]
pub struct PgAddress {
    pub host: String,
    pub port: u16,
    pub options: PgConnectOptions,
    /// The guest's `connect_timeout`, if any (the pool's acquire timeout caps it).
    pub connect_timeout: Option<Duration>,
}

/// Fails while any of [`SQLX_ENVIRONMENT`] is set in this process: a guest's
/// connection would pick it up. `nexa up` removes them at start-up.
pub fn check_environment() -> Result<(), String> {
    let set: Vec<&str> = SQLX_ENVIRONMENT
        .iter()
        .copied()
        .filter(|name| std::env::var_os(name).is_some())
        .collect();
    if set.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} set in the host's environment; components' Postgres connections must not inherit it: unset it",
            set.join(", ")
        ))
    }
}

/// Parses `postgres://user:password@host:port/dbname?sslmode=...` or the
/// key=value form (`host=... port=... user=... dbname=...`).
pub fn parse_address(address: &str) -> Result<PgAddress, String> {
    let trimmed = address.trim();
    let parsed = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        Parameters::from_url(trimmed)?
    } else {
        Parameters::from_key_values(trimmed)?
    };
    parsed.into_address()
}

/// What an address says, before it becomes connect options.
#[derive(Default)]
struct Parameters {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<String>,
    connect_timeout: Option<String>,
    application_name: Option<String>,
}

impl Parameters {
    fn from_url(raw: &str) -> Result<Self, String> {
        // libpq's `host1:port1,host2:port2`, which is no URL authority.
        let authority = raw
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default())
            .unwrap_or_default();
        if authority.contains(',') {
            return Err("only one host may be given".to_string());
        }
        let url = url::Url::parse(raw).map_err(|e| format!("invalid connection string: {e}"))?;
        let mut parameters = Parameters {
            host: url
                .host_str()
                .map(|h| decode(h.trim_start_matches('[').trim_end_matches(']')))
                .transpose()?,
            port: url.port(),
            ..Parameters::default()
        };
        if !url.username().is_empty() {
            parameters.user = Some(decode(url.username())?);
        }
        if let Some(password) = url.password() {
            parameters.password = Some(decode(password)?);
        }
        let path = url.path().trim_start_matches('/');
        if !path.is_empty() {
            parameters.dbname = Some(decode(path)?);
        }
        for (key, value) in url.query_pairs() {
            parameters.set(&key, value.into_owned())?;
        }
        Ok(parameters)
    }

    fn from_key_values(raw: &str) -> Result<Self, String> {
        let mut parameters = Parameters::default();
        for pair in raw.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("invalid connection string: expected key=value, got {pair:?}")
            })?;
            let value = value.trim_matches('\'').to_string();
            match key {
                "host" => parameters.host = Some(value),
                "port" => {
                    parameters.port = Some(value.parse().map_err(|_| {
                        format!("invalid connection string: port {value:?} is not a port number")
                    })?)
                }
                _ => parameters.set(key, value)?,
            }
        }
        Ok(parameters)
    }

    /// One of [`ALLOWED_PARAMETERS`]; any other is refused by name.
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let slot = match key {
            "user" => &mut self.user,
            "password" => &mut self.password,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "connect_timeout" => &mut self.connect_timeout,
            "application_name" => &mut self.application_name,
            other => {
                return Err(format!(
                    "connection parameter {other:?} is not permitted (allowed: host and port in the address; {})",
                    ALLOWED_PARAMETERS.join(", ")
                ));
            }
        };
        *slot = Some(value);
        Ok(())
    }

    /// Every option sqlx would default from the environment is set here.
    fn into_address(self) -> Result<PgAddress, String> {
        let host = self
            .host
            .filter(|h| !h.is_empty())
            .ok_or("invalid connection string: a host is required")?;
        if host.starts_with('/') || host.starts_with('@') {
            return Err("Unix sockets are not supported; use a TCP host".to_string());
        }
        if host.contains(',') {
            return Err("only one host may be given".to_string());
        }
        let user = self
            .user
            .filter(|u| !u.is_empty())
            .ok_or("invalid connection string: a user is required")?;
        let port = self.port.unwrap_or(5432);
        let ssl_mode = match self.sslmode.as_deref() {
            None => PgSslMode::Prefer,
            Some(mode) => PgSslMode::from_str(mode)
                .map_err(|e| format!("invalid connection string: sslmode: {e}"))?,
        };
        // As in libpq, 0 (or nothing) means no limit of the guest's own.
        let connect_timeout = match self.connect_timeout.as_deref() {
            None => None,
            Some(secs) => Some(secs.parse::<u64>().map_err(|_| {
                format!("invalid connection string: connect_timeout {secs:?} is not whole seconds")
            })?),
        }
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs);
        let database = self.dbname.unwrap_or_else(|| user.clone());
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&host)
            .port(port)
            .username(&user)
            .database(&database)
            .ssl_mode(ssl_mode)
            .application_name(self.application_name.as_deref().unwrap_or(""));
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        Ok(PgAddress {
            host: host.to_ascii_lowercase(),
            port,
            options,
            connect_timeout,
        })
    }
}

fn decode(part: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| "invalid connection string: bad percent-encoding".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str) -> String {
        parse_address(address).expect_err(address)
    }

    #[test]
    fn both_forms_parse() {
        let url = parse_address("postgres://u:p%40ss@db.example:6543/app?sslmode=disable").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("db.example", 6543));
        assert_eq!(url.options.get_database(), Some("app"));
        assert_eq!(url.options.get_username(), "u");
        let kv =
            parse_address("host=127.0.0.1 port=5433 user=u dbname=app sslmode=disable").unwrap();
        assert_eq!((kv.host.as_str(), kv.port), ("127.0.0.1", 5433));
        assert_eq!(kv.options.get_database(), Some("app"));
        let timeout = parse_address("postgres://u@h/db?connect_timeout=3&application_name=x");
        assert_eq!(
            timeout.unwrap().connect_timeout,
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn the_database_defaults_to_the_user_not_the_environment() {
        let address = parse_address("postgres://alice@127.0.0.1:5432").unwrap();
        assert_eq!(address.options.get_database(), Some("alice"));
        assert_eq!(address.options.get_application_name(), Some(""));
    }

    #[test]
    fn parameters_that_escape_the_allow_list_are_refused_by_name() {
        for (address, named) in [
            (
                "postgres://u@127.0.0.1:5432/db?host=/var/run/postgresql",
                "\"host\"",
            ),
            (
                "postgres://u@127.0.0.1:5432/db?hostaddr=10.0.0.9",
                "\"hostaddr\"",
            ),
            ("postgres://u@127.0.0.1:5432/db?port=5433", "\"port\""),
            (
                "postgres://u@127.0.0.1/db?sslkey=/root/.ssh/id_rsa",
                "\"sslkey\"",
            ),
            (
                "postgres://u@127.0.0.1/db?sslcert=/etc/passwd",
                "\"sslcert\"",
            ),
            (
                "postgres://u@127.0.0.1/db?sslrootcert=/etc/passwd",
                "\"sslrootcert\"",
            ),
            (
                "postgres://u@127.0.0.1/db?passfile=/root/.pgpass",
                "\"passfile\"",
            ),
            (
                "postgres://u@127.0.0.1/db?options=-c%20role%3Dx",
                "\"options\"",
            ),
            ("host=127.0.0.1 user=u hostaddr=10.0.0.9", "\"hostaddr\""),
            ("host=127.0.0.1 user=u sslkey=/k", "\"sslkey\""),
        ] {
            let error = refused(address);
            assert!(error.contains(named), "{address}: {error}");
        }
    }

    #[test]
    fn sockets_several_hosts_and_missing_parts_are_refused() {
        assert!(refused("postgres://u@%2Fvar%2Frun%2Fpostgresql/db").contains("Unix"));
        assert!(refused("host=/var/run/postgresql user=u").contains("Unix"));
        assert!(refused("postgres://u@a,b:5432/db").contains("one host"));
        assert!(refused("postgres://u@a:1,b:2/db").contains("one host"));
        assert!(refused("host=a,b user=u").contains("one host"));
        assert!(refused("postgres:///db?user=u").contains("host"));
        assert!(refused("postgres://127.0.0.1/db").contains("user"));
        assert!(refused("host=x bogus=1").contains("\"bogus\""));
        assert!(refused("postgres://u@h/db?sslmode=sideways").contains("sslmode"));
    }
}
