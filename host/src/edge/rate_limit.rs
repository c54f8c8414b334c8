//! Inbound rate limiting: GCRA quotas per class of route, kept in-process
//! with `governor` or, when `[rate_limit] redis_url` is set, in Redis (one
//! atomic script per check) so every replica shares one budget. If Redis
//! cannot answer, the check falls back to the in-process limiter, says so in
//! the log, and counts it — it never fails open silently and never fails the
//! request.
//!
//! Classes, checked in this order: `login` and `register` (listed routes, per
//! client), `write` (other non-GET methods, per authenticated subject, else per
//! client) and `read` (GET/HEAD, per client). Preflights (`OPTIONS`) and
//! `exempt_routes` are not limited. Limited responses carry
//! `RateLimit-Limit`, `-Remaining`, `-Reset` and `RateLimit-Policy`
//! (draft-ietf-httpapi-ratelimit-headers-07); a refusal is a 429 with
//! `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;

use super::client::Client;

/// How long a Redis check may take before the in-process limiter decides.
const REDIS_CHECK_TIMEOUT: Duration = Duration::from_millis(250);

/// `[rate_limit]` in nexa.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Off turns every class off (benchmarks run that way). Default true.
    pub enabled: bool,
    /// A `redis://` URL: share budgets across replicas. Default: none (in-process).
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys. Default `nexa:ratelimit:`.
    pub redis_key_prefix: String,
    /// Paths never limited (exact, trailing `/` ignored). Default `["/health"]`.
    pub exempt_routes: Vec<String>,
    /// Default 10 per minute per client on `POST /auth/token`.
    pub login: ClassQuota,
    /// Default 10 per minute per client on `POST /users`.
    pub register: ClassQuota,
    /// Default 120 per minute per subject on other POST/PUT/PATCH/DELETE.
    pub write: ClassQuota,
    /// Default 600 per minute per client, burst 100, on GET/HEAD.
    pub read: ClassQuota,
}

/// One class's quota: `per_minute` requests, of which up to `burst` may come
/// at once (default: all of them). `routes` (`"METHOD /path"`) only for
/// `login` and `register`; unset keeps the class's default routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassQuota {
    pub per_minute: NonZeroU32,
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

impl ClassQuota {
    fn new(per_minute: u32, burst: Option<u32>) -> Self {
        Self {
            per_minute: NonZeroU32::new(per_minute).expect("nonzero"),
            burst: burst.and_then(NonZeroU32::new),
            routes: None,
        }
    }

    fn burst(&self) -> NonZeroU32 {
        self.burst.unwrap_or(self.per_minute)
    }

    /// The time one request's share of the quota takes to come back.
    fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            redis_url: None,
            redis_key_prefix: "nexa:ratelimit:".to_string(),
            exempt_routes: vec!["/health".to_string()],
            login: ClassQuota::new(10, None),
            register: ClassQuota::new(10, None),
            write: ClassQuota::new(120, None),
            read: ClassQuota::new(600, Some(100)),
        }
    }
}

/// A class of routes with its own quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Login,
    Register,
    Write,
    Read,
}

impl Class {
    const ALL: [Class; 4] = [Class::Login, Class::Register, Class::Write, Class::Read];

    pub fn name(self) -> &'static str {
        match self {
            Class::Login => "login",
            Class::Register => "register",
            Class::Write => "write",
            Class::Read => "read",
        }
    }

    fn default_routes(self) -> &'static [&'static str] {
        match self {
            Class::Login => &["POST /auth/token"],
            Class::Register => &["POST /users"],
            Class::Write | Class::Read => &[],
        }
    }
}

/// What a check decided, and what the response says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub class: Class,
    pub allowed: bool,
    pub per_minute: u32,
    pub burst: u32,
    pub remaining: u32,
    /// Until the budget is whole again.
    pub reset: Duration,
    /// Until the next request would be allowed (zero when this one was).
    pub retry_after: Duration,
}

/// Whole seconds, rounded up: a client that waits this long is not refused again.
pub fn whole_seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

impl Decision {
    /// `RateLimit-*` headers (and `Retry-After` when refused).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let number = |n: u64| HeaderValue::from(n);
        headers.insert("ratelimit-limit", number(self.burst.into()));
        headers.insert("ratelimit-remaining", number(self.remaining.into()));
        headers.insert("ratelimit-reset", number(whole_seconds(self.reset)));
        if let Ok(policy) = HeaderValue::from_str(&format!(
            "{};w=60;burst={};comment=\"{}\"",
            self.per_minute,
            self.burst,
            self.class.name()
        )) {
            headers.insert("ratelimit-policy", policy);
        }
        if !self.allowed {
            headers.insert(
                http::header::RETRY_AFTER,
                number(whole_seconds(self.retry_after).max(1)),
            );
        }
    }
}

type MemoryLimiter = DefaultKeyedRateLimiter<String, StateInformationMiddleware>;

struct ClassLimiter {
    class: Class,
    quota: ClassQuota,
    routes: Vec<(Method, String)>,
    memory: MemoryLimiter,
}

impl ClassLimiter {
    fn new(class: Class, quota: &ClassQuota) -> Result<Self, String> {
        let routes: Vec<String> = match (&quota.routes, class) {
            (Some(_), Class::Write | Class::Read) => {
                return Err(format!(
                    "rate_limit.{}.routes: only login and register take routes",
                    class.name()
                ));
            }
            (Some(routes), _) => routes.clone(),
            (None, _) => class
                .default_routes()
                .iter()
                .map(|r| r.to_string())
                .collect(),
        };
        let routes = routes
            .iter()
            .map(|route| {
                let (method, path) = route.split_once(' ').ok_or_else(|| {
                    format!(
                        "rate_limit.{}.routes: {route:?} is not \"METHOD /path\"",
                        class.name()
                    )
                })?;
                let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| {
                        format!(
                            "rate_limit.{}.routes: bad method in {route:?}",
                            class.name()
                        )
                    })?;
                Ok((method, trim_path(path.trim()).to_string()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let governor_quota = Quota::with_period(quota.interval())
            .ok_or("rate_limit: the quota is too large")?
            .allow_burst(quota.burst());
        Ok(Self {
            class,
            quota: quota.clone(),
            routes,
            memory: governor::RateLimiter::keyed(governor_quota)
                .with_middleware::<StateInformationMiddleware>(),
        })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.routes.iter().any(|(m, p)| m == method && p == path)
    }

    fn decision(
        &self,
        allowed: bool,
        remaining: u32,
        reset: Duration,
        retry_after: Duration,
    ) -> Decision {
        Decision {
            class: self.class,
            allowed,
            per_minute: self.quota.per_minute.get(),
            burst: self.quota.burst().get(),
            remaining,
            reset,
            retry_after,
        }
    }

    fn check_in_process(&self, key: &str) -> Decision {
        let interval = self.quota.interval();
        let burst = self.quota.burst().get();
        match self.memory.check_key(&key.to_string()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                self.decision(
                    true,
                    remaining,
                    interval * (burst - remaining),
                    Duration::ZERO,
                )
            }
            Err(not_until) => {
                let retry = not_until.wait_time_from(DefaultClock::default().now());
                self.decision(false, 0, retry + interval * (burst - 1), retry)
            }
        }
    }
}

fn trim_path(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// GCRA in one Redis script: the key holds the theoretical arrival time
/// (ms); a request is allowed while it stays within `burst` intervals of
/// now. Returns `{allowed, remaining, retry_ms, reset_ms}`.
const GCRA_SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > tolerance then
  return {0, 0, new_tat - now - tolerance, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, new_tat - now}
";

/// The shared budget in Redis, and whether it is answering.
struct RedisBudget {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
    degraded: AtomicBool,
}

/// Counters for the metrics to come and for tests.
#[derive(Debug, Default)]
pub struct RateLimitStats {
    /// Refused requests, by class (in [`Class::ALL`] order).
    pub limited: [AtomicU64; 4],
    /// Checks the in-process limiter made because Redis did not answer.
    pub redis_fallbacks: AtomicU64,
}

/// Verifies bearer tokens with the app's own JWT settings, to key the
/// `write` class by subject. Only the signature, issuer, audience and expiry
/// are checked: the component still authorizes the request.
pub struct SubjectVerifier {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

#[derive(Deserialize)]
struct SubjectClaims {
    sub: String,
}

impl SubjectVerifier {
    /// From the app's `jwt_secret`, `jwt_issuer` and `jwt_audience` variables;
    /// `None` when there is no secret (then writes are keyed by client).
    pub fn new(secret: &str, issuer: Option<&str>, audience: Option<&str>) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        match issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Some(Self {
            key: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            validation,
        })
    }

    pub fn subject(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        jsonwebtoken::decode::<SubjectClaims>(token.trim(), &self.key, &self.validation)
            .ok()
            .map(|data| data.claims.sub)
    }
}

/// The app's rate limiter.
pub struct RateLimiter {
    classes: Vec<ClassLimiter>,
    exempt: Vec<String>,
    redis: Option<RedisBudget>,
    subjects: Option<SubjectVerifier>,
    pub stats: RateLimitStats,
}

impl RateLimiter {
    /// `None` when rate limiting is off. Connects to Redis lazily.
    pub fn new(
        config: &RateLimitConfig,
        subjects: Option<SubjectVerifier>,
    ) -> Result<Option<Arc<Self>>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let quotas = [&config.login, &config.register, &config.write, &config.read];
        let classes = Class::ALL
            .iter()
            .zip(quotas)
            .map(|(class, quota)| ClassLimiter::new(*class, quota))
            .collect::<Result<Vec<_>, _>>()?;
        let redis = match &config.redis_url {
            None => None,
            Some(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| format!("rate_limit.redis_url: {e}"))?;
                let manager = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_CHECK_TIMEOUT))
                    .set_response_timeout(Some(REDIS_CHECK_TIMEOUT))
                    .set_number_of_retries(0);
                let connection = client
                    .get_connection_manager_lazy(manager)
                    .map_err(|e| format!("rate_limit.redis_url: {e}"))?;
                Some(RedisBudget {
                    connection,
                    script: redis::Script::new(GCRA_SCRIPT),
                    prefix: config.redis_key_prefix.clone(),
                    degraded: AtomicBool::new(false),
                })
            }
        };
        Ok(Some(Arc::new(Self {
            classes,
            exempt: config
                .exempt_routes
                .iter()
                .map(|p| trim_path(p).to_string())
                .collect(),
            redis,
            subjects,
            stats: RateLimitStats::default(),
        })))
    }

    /// The class a request falls in, if it is limited at all.
    pub fn classify(&self, method: &Method, path: &str) -> Option<Class> {
        let path = trim_path(path);
        if method == Method::OPTIONS || self.exempt.iter().any(|p| p == path) {
            return None;
        }
        for limiter in &self.classes[..2] {
            if limiter.matches(method, path) {
                return Some(limiter.class);
            }
        }
        Some(if matches!(*method, Method::GET | Method::HEAD) {
            Class::Read
        } else {
            Class::Write
        })
    }

    /// Counts the request against its class's budget.
    pub async fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        client: &Client,
    ) -> Option<Decision> {
        let class = self.classify(method, path)?;
        let limiter = &self.classes[class as usize];
        let subject = match class {
            Class::Write => self.subjects.as_ref().and_then(|s| s.subject(headers)),
            _ => None,
        };
        let key = match subject {
            Some(subject) => format!("{}:sub:{subject}", class.name()),
            None => format!("{}:ip:{}", class.name(), client.addr.ip()),
        };
        let decision = match &self.redis {
            Some(redis) => match self.check_redis(redis, limiter, &key).await {
                Some(decision) => decision,
                None => limiter.check_in_process(&key),
            },
            None => limiter.check_in_process(&key),
        };
        if !decision.allowed {
            self.stats.limited[class as usize].fetch_add(1, Ordering::Relaxed);
        }
        Some(decision)
    }

    /// `None` when Redis did not answer in time: logged once per outage.
    async fn check_redis(
        &self,
        redis: &RedisBudget,
        limiter: &ClassLimiter,
        key: &str,
    ) -> Option<Decision> {
        let mut connection = redis.connection.clone();
        let mut invocation = redis.script.key(format!("{}{key}", redis.prefix));
        invocation
            .arg(limiter.quota.interval().as_millis() as u64)
            .arg(limiter.quota.burst().get());
        let answer = tokio::time::timeout(
            REDIS_CHECK_TIMEOUT,
            invocation.invoke_async::<(i64, i64, i64, i64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, retry_ms, reset_ms))) => {
                if redis.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("rate limiting: Redis answers again; budgets are shared");
                }
                Some(limiter.decision(
                    allowed == 1,
                    remaining.max(0) as u32,
                    Duration::from_millis(reset_ms.max(0) as u64),
                    Duration::from_millis(retry_ms.max(0) as u64),
                ))
            }
            failed => {
                self.stats.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                crate::metrics::Metrics::global()
                    .rate_limit_redis_fallbacks
                    .inc();
                if !redis.degraded.swap(true, Ordering::Relaxed) {
                    let reason = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {} ms", REDIS_CHECK_TIMEOUT.as_millis()),
                    };
                    tracing::warn!(
                        %reason,
                        "rate limiting: Redis is unreachable; limiting in-process (per replica) until it answers"
                    );
                }
                None
            }
        }
    }

    /// Forgets in-process keys whose budget is whole again; run periodically.
    pub fn forget_idle_keys(&self) {
        for limiter in &self.classes {
            limiter.memory.retain_recent();
            limiter.memory.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::Scheme;
    use super::*;

    fn client(ip: &str) -> Client {
        Client {
            addr: format!("{ip}:5000").parse().unwrap(),
            scheme: Scheme::Http,
            via_trusted_proxy: false,
        }
    }

    fn limiter(config: RateLimitConfig) -> Arc<RateLimiter> {
        RateLimiter::new(
            &config,
            SubjectVerifier::new("s3cret", Some("nexa"), Some("nexa-api")),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn classes_follow_routes_and_methods() {
        let limiter = limiter(RateLimitConfig::default());
        assert_eq!(
            limiter.classify(&Method::POST, "/auth/token"),
            Some(Class::Login)
        );
        assert_eq!(
            limiter.classify(&Method::POST, "/users/"),
            Some(Class::Register)
        );
        assert_eq!(
            limiter.classify(&Method::POST, "/items/"),
            Some(Class::Write)
        );
        assert_eq!(
            limiter.classify(&Method::DELETE, "/items/3"),
            Some(Class::Write)
        );
        assert_eq!(
            limiter.classify(&Method::GET, "/items/3"),
            Some(Class::Read)
        );
        assert_eq!(limiter.classify(&Method::GET, "/health"), None);
        assert_eq!(limiter.classify(&Method::OPTIONS, "/items/"), None);
    }

    #[test]
    fn routes_only_where_they_mean_something() {
        let mut config = RateLimitConfig::default();
        config.read.routes = Some(vec!["GET /x".into()]);
        let error = RateLimiter::new(&config, None).err().unwrap();
        assert!(error.contains("rate_limit.read.routes"), "{error}");
        let mut config = RateLimitConfig::default();
        config.login.routes = Some(vec!["/no-method".into()]);
        assert!(RateLimiter::new(&config, None).is_err());
        config.enabled = false;
        assert!(RateLimiter::new(&config, None).unwrap().is_none());
    }

    #[tokio::test]
    async fn the_burst_is_allowed_then_refused_with_an_honest_retry_after() {
        let limiter = limiter(RateLimitConfig::default());
        let headers = HeaderMap::new();
        let me = client("198.51.100.1");
        for expected_remaining in (0..10).rev() {
            let decision = limiter
                .check(&Method::POST, "/auth/token", &headers, &me)
                .await
                .unwrap();
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
        }
        let refused = limiter
            .check(&Method::POST, "/auth/token", &headers, &me)
            .await
            .unwrap();
        assert!(!refused.allowed);
        // One request's share comes back after 6 s (10 per minute).
        assert!(refused.retry_after <= Duration::from_secs(6), "{refused:?}");
        assert!(refused.retry_after > Duration::from_secs(5), "{refused:?}");
        let mut response = HeaderMap::new();
        refused.write_headers(&mut response);
        assert_eq!(response["retry-after"], "6");
        assert_eq!(response["ratelimit-remaining"], "0");
        assert_eq!(
            response["ratelimit-policy"],
            "10;w=60;burst=10;comment=\"login\""
        );
        // Another client has its own budget.
        assert!(
            limiter
                .check(
                    &Method::POST,
                    "/auth/token",
                    &headers,
                    &client("198.51.100.2")
                )
                .await
                .unwrap()
                .allowed
        );
        assert_eq!(
            limiter.stats.limited[Class::Login as usize].load(Ordering::Relaxed),
            1
        );
    }

    #[tokio::test]
    async fn writes_are_keyed_by_a_valid_subject() {
        let config = RateLimitConfig {
            write: ClassQuota::new(2, None),
            ..RateLimitConfig::default()
        };
        let limiter = limiter(config);
        let claims = serde_json::json!({
            "sub": "7", "exp": 4_000_000_000u64, "iss": "nexa", "aud": "nexa-api"
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", format!("Bearer {token}").parse().unwrap());
        // The same subject from two addresses shares one budget...
        for ip in ["198.51.100.1", "198.51.100.2"] {
            assert!(
                limiter
                    .check(&Method::POST, "/items", &bearer, &client(ip))
                    .await
                    .unwrap()
                    .allowed
            );
        }
        let third = client("198.51.100.3");
        let third = limiter
            .check(&Method::POST, "/items", &bearer, &third)
            .await;
        assert!(!third.unwrap().allowed);
        // ...and a forged token counts against the address instead.
        let mut forged = HeaderMap::new();
        forged.insert("authorization", format!("Bearer {token}x").parse().unwrap());
        let first = client("198.51.100.1");
        let anonymous = limiter
            .check(&Method::POST, "/items", &forged, &first)
            .await;
        assert!(anonymous.unwrap().allowed);
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_in_process_budget() {
        let config = RateLimitConfig {
            // Nothing listens on port 1.
            redis_url: Some("redis://127.0.0.1:1".into()),
            login: ClassQuota::new(2, None),
            ..RateLimitConfig::default()
        };
        let limiter = limiter(config);
        let headers = HeaderMap::new();
        let me = client("198.51.100.1");
        let mut allowed = 0;
        for _ in 0..4 {
            if limiter
                .check(&Method::POST, "/auth/token", &headers, &me)
                .await
                .unwrap()
                .allowed
            {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 2, "the fallback still limits");
        assert_eq!(limiter.stats.redis_fallbacks.load(Ordering::Relaxed), 4);
    }
}
