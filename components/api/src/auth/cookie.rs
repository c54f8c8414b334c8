//! The refresh-token cookie: `refresh_token=<token>; HttpOnly;
//! SameSite=Strict; Path=/auth; Max-Age=<secs>` (plus `Secure` over TLS),
//! built and read with the `cookie` crate.

use cookie::time::Duration;
use cookie::{Cookie, SameSite};

/// The cookie's name.
pub const NAME: &str = "refresh_token";

/// The `Set-Cookie` value that hands the client `token` for `max_age_secs`
/// (0 with an empty token clears it). Scoped to `/auth`, out of scripts'
/// reach, never sent cross-site, and `Secure` when the request came over TLS.
pub fn set_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    Cookie::build((NAME, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/auth")
        .max_age(Duration::seconds(max_age_secs))
        .secure(secure)
        .build()
        .to_string()
}

/// The refresh token in a `Cookie` header, when there is a non-empty one.
/// Malformed pairs are skipped, not fatal: other cookies are not ours.
pub fn refresh_token(cookie_header: Option<&str>) -> Option<String> {
    Cookie::split_parse(cookie_header?)
        .filter_map(Result::ok)
        .find(|c| c.name() == NAME)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(set_cookie: &str) -> Vec<&str> {
        let mut parts: Vec<&str> = set_cookie.split("; ").collect();
        parts.sort();
        parts
    }

    #[test]
    fn the_cookie_carries_the_same_attributes_as_before() {
        let value = set_cookie("abc", 604800, false);
        assert!(value.starts_with("refresh_token=abc;"), "{value}");
        assert_eq!(
            attributes(&value),
            [
                "HttpOnly",
                "Max-Age=604800",
                "Path=/auth",
                "SameSite=Strict",
                "refresh_token=abc"
            ]
        );
        assert!(attributes(&set_cookie("abc", 60, true)).contains(&"Secure"));
        let cleared = set_cookie("", 0, false);
        assert!(cleared.starts_with("refresh_token=;"), "{cleared}");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn the_token_is_read_from_the_cookie_header() {
        assert_eq!(
            refresh_token(Some("refresh_token=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            refresh_token(Some("theme=dark; refresh_token=a-b_c; other=1")).as_deref(),
            Some("a-b_c")
        );
        assert_eq!(
            refresh_token(Some("bad cookie;;refresh_token=x")).as_deref(),
            Some("x")
        );
        assert_eq!(refresh_token(Some("refresh_token=")), None);
        assert_eq!(refresh_token(Some("other=1")), None);
        assert_eq!(refresh_token(Some("")), None);
        assert_eq!(refresh_token(None), None);
    }
}
