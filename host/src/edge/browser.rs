//! What the edge does for browsers: CORS for an allow-list of origins
//! (tower-http), refusing cross-site state changes that ride on cookies or
//! on forms a page can send without a preflight, and security headers on
//! every response.

use std::time::Duration;

use http::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, ORIGIN, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `[cors]` in nexa.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`) whose pages may call the API, with
    /// credentials. Default: none (same origin only).
    pub allowed_origins: Vec<String>,
    /// How long browsers may cache a preflight's answer. Default 600 s.
    pub max_age_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            max_age_secs: 600,
        }
    }
}

impl CorsConfig {
    /// The listed origins, each checked to be a bare origin.
    pub fn origins(&self) -> Result<Vec<HeaderValue>, String> {
        self.allowed_origins
            .iter()
            .map(|origin| {
                let url = url::Url::parse(origin)
                    .map_err(|_| format!("cors.allowed_origins: {origin:?} is not a URL"))?;
                let bare = url.origin().ascii_serialization();
                if bare != origin.trim_end_matches('/') {
                    return Err(format!(
                        "cors.allowed_origins: {origin:?} is not a bare origin (did you mean {bare:?}?)"
                    ));
                }
                HeaderValue::from_str(&bare).map_err(|e| e.to_string())
            })
            .collect()
    }

    /// The CORS layer. With no origin listed it grants none (browsers then
    /// enforce same-origin), and answers preflights without granting.
    pub fn layer(&self) -> Result<CorsLayer, String> {
        let origins = self.origins()?;
        if origins.is_empty() {
            return Ok(CorsLayer::new());
        }
        Ok(CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                http::header::AUTHORIZATION,
                CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("ratelimit-policy"),
                http::header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(self.max_age_secs)))
    }
}

/// Whether a request is a state change a foreign page could make the
/// browser send with the user's credentials: an unsafe method carrying a
/// cookie, or a body type a plain HTML form (no preflight) can produce.
fn is_ambient_state_change(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let form_like = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|media| {
            matches!(
                media.as_str(),
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            )
        });
    form_like || headers.contains_key(COOKIE)
}

/// Refuses (with the reason) a cross-site state change: the browser says
/// where the request came from in `Sec-Fetch-Site` or `Origin`, and it must
/// be this site (`own_origin`) or a listed one. Requests that say neither
/// (curl, servers) are not from a browser page and pass.
pub fn check_cross_site(
    method: &Method,
    headers: &HeaderMap,
    own_origin: &str,
    allowed: &[HeaderValue],
) -> Result<(), &'static str> {
    if !is_ambient_state_change(method, headers) {
        return Ok(());
    }
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let listed = |origin: &str| origin == own_origin || allowed.iter().any(|a| a == origin);
    if let Some(origin) = origin
        && origin != "null"
    {
        return if listed(origin) {
            Ok(())
        } else {
            Err("Cross-site request refused: its Origin is not allowed")
        };
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin") | Some("none") => Ok(()),
        Some(_) => Err("Cross-site request refused"),
        // `Origin: null` (sandboxed or opaque) without fetch metadata.
        None if origin.is_some() => Err("Cross-site request refused: opaque origin"),
        None => Ok(()),
    }
}

/// The policy for responses that set none (the API's JSON): nothing to load,
/// never framed.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds what a response lacks of: `nosniff`, a referrer policy, a CSP that
/// forbids framing, and HSTS when the client reached us over https through
/// a trusted proxy (a plain-http host must not send it).
pub fn add_security_headers(headers: &mut HeaderMap, hsts: bool) {
    headers
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    if hsts {
        headers
            .entry(STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    const OWN: &str = "http://127.0.0.1:3000";

    #[test]
    fn cookie_and_form_requests_from_foreign_pages_are_refused() {
        let allowed = [HeaderValue::from_static("https://app.example.com")];
        let check = |method: Method, pairs: &[(&str, &str)]| {
            check_cross_site(&method, &headers(pairs), OWN, &allowed)
        };
        let evil = ("origin", "https://evil.example");
        assert!(check(Method::POST, &[("cookie", "refresh_token=x"), evil]).is_err());
        assert!(
            check(
                Method::POST,
                &[("content-type", "application/x-www-form-urlencoded"), evil]
            )
            .is_err()
        );
        assert!(
            check(
                Method::POST,
                &[("cookie", "a=b"), ("sec-fetch-site", "cross-site")]
            )
            .is_err()
        );
        assert!(check(Method::POST, &[("cookie", "a=b"), ("origin", "null")]).is_err());
        // The positive controls: own origin, a listed origin, no browser at
        // all, a JSON call with a bearer token, and reads.
        assert!(check(Method::POST, &[("cookie", "a=b"), ("origin", OWN)]).is_ok());
        assert!(
            check(
                Method::POST,
                &[("cookie", "a=b"), ("origin", "https://app.example.com")]
            )
            .is_ok()
        );
        assert!(
            check(
                Method::POST,
                &[("cookie", "a=b"), ("sec-fetch-site", "same-origin")]
            )
            .is_ok()
        );
        assert!(check(Method::POST, &[("cookie", "a=b")]).is_ok());
        assert!(check(Method::POST, &[("content-type", "application/json"), evil]).is_ok());
        assert!(check(Method::GET, &[("cookie", "a=b"), evil]).is_ok());
    }

    #[test]
    fn origins_must_be_bare() {
        let config = CorsConfig {
            allowed_origins: vec!["https://app.example.com/path".into()],
            ..CorsConfig::default()
        };
        assert!(config.origins().unwrap_err().contains("bare origin"));
        assert!(CorsConfig::default().layer().is_ok());
    }

    #[test]
    fn security_headers_fill_gaps_only() {
        let mut response = headers(&[("content-security-policy", "default-src 'self'")]);
        add_security_headers(&mut response, false);
        assert_eq!(response["content-security-policy"], "default-src 'self'");
        assert_eq!(response["x-content-type-options"], "nosniff");
        assert!(!response.contains_key("strict-transport-security"));
        add_security_headers(&mut response, true);
        assert!(response.contains_key("strict-transport-security"));
    }
}
