//! Property tests of the API's parsers of untrusted input — bearer tokens,
//! the refresh-token cookie and the route table — on stable Rust with
//! `proptest`, a fixed number of cases each; failing inputs are kept in
//! `tests/fuzz.txt` and replayed first on every run.

use nexa_api::auth::cookie;
use nexa_api::auth::jwt::{Claims, TokenKeys};
use nexa_api::routes;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("tests/fuzz.txt"))),
        ..Config::default()
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn keys() -> TokenKeys {
    TokenKeys::new(SECRET, "nexa", "nexa-api").unwrap()
}

fn claims(sub: String) -> Claims {
    Claims {
        sub,
        username: "someone".into(),
        role: "user".into(),
        iat: 1,
        exp: 4_102_444_800,
        jti: "session".into(),
        iss: "nexa".into(),
        aud: "nexa-api".into(),
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Any text is refused as a token (never a panic); an issued token is
    /// accepted, and the same token changed in its header or payload is not.
    #[test]
    fn tokens_verify_only_as_issued(text in any::<String>(), sub in "[0-9]{1,6}", at in any::<usize>()) {
        let keys = keys();
        prop_assert!(keys.verify(&text).is_err());
        let token = keys.issue(&claims(sub.clone())).unwrap();
        prop_assert_eq!(keys.verify(&token).unwrap().sub, sub);
        let signed_part = token.rfind('.').unwrap();
        let at = at % signed_part;
        if token.as_bytes()[at] != b'.' {
            let mut bytes = token.into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            prop_assert!(keys.verify(&String::from_utf8(bytes).unwrap()).is_err());
        }
    }

    /// Whatever the Cookie header holds, reading it never panics; our cookie
    /// among others always comes back as it was set.
    #[test]
    fn the_refresh_cookie_round_trips(
        header in any::<String>(),
        token in "[A-Za-z0-9_-]{1,64}",
        before in "([a-z]{1,8}=[a-z0-9]{0,8}; ){0,3}",
    ) {
        let _ = cookie::refresh_token(Some(&header));
        let set = cookie::set_cookie(&token, 600, true);
        let pair = set.split(';').next().unwrap();
        let sent = format!("{before}{pair}");
        prop_assert_eq!(cookie::refresh_token(Some(&sent)), Some(token));
    }

    /// Any method and path either match a route or are refused (404/405),
    /// never a panic; a matched `{id}` is the positive integer in the path.
    #[test]
    fn routes_resolve_or_refuse(
        method in prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"]),
        path in prop_oneof![
            any::<String>(),
            "(/(items|users|auth|me|token|[0-9]{1,20}|-1|%2F|)){0,4}/?",
        ],
    ) {
        if let Ok(matched) = routes::resolve(method, &path)
            && let Some(id) = matched.id
        {
            prop_assert!(id > 0);
            prop_assert!(path.contains(&id.to_string()), "{} {}", path, id);
        }
    }
}
