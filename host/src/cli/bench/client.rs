//! One HTTP/1.1 keep-alive connection to the target, as a load generator
//! needs it: opened once (again after a failure), one request at a time,
//! every answer read to its end so the connection can carry the next one.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// What `--ids` fills in a URL.
pub const ID_PLACEHOLDER: &str = "{id}";

/// The most ids one target cycles through (each is a parsed path kept in
/// memory for the run).
pub const MAX_IDS: u64 = 1_000_000;

/// What to send, and where: the same request every time, or the same with
/// the next of several paths (`--ids`).
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    pub method: Method,
    /// The addresses the URL's host resolved to, tried in order.
    addresses: Vec<SocketAddr>,
    /// The request line's targets (`/path?query`), used in turn by all
    /// connections together (one, unless ids are cycled).
    paths: Arc<[Uri]>,
    next_path: Arc<AtomicUsize>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// Why a target cannot be benchmarked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    #[error("{0:?} is not a URL: {1}")]
    Url(String, http::uri::InvalidUri),
    #[error("{0:?}: only http:// URLs can be benchmarked (TLS is not supported)")]
    Scheme(String),
    #[error("{0:?} names no host")]
    NoHost(String),
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{0:?}: an invalid Host header")]
    Host(String),
    #[error("{0:?} has no {{id}} for --ids to fill in")]
    NoIdPlaceholder(String),
    #[error("--ids {start}..{end}: at most {MAX_IDS} ids")]
    TooManyIds { start: u64, end: u64 },
}

impl Target {
    /// Parses `url` and resolves its host once (a load test must not time
    /// name lookups). A `Host` header is added unless `headers` has one.
    pub async fn new(
        url: &str,
        method: Method,
        mut headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Self, TargetError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| TargetError::Url(url.to_string(), e))?;
        if uri.scheme_str() != Some("http") {
            return Err(TargetError::Scheme(url.to_string()));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| TargetError::NoHost(url.to_string()))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| TargetError::Resolve {
                host: host.to_string(),
                source,
            })?
            .collect();
        if !headers.iter().any(|(name, _)| name == HOST) {
            let value = HeaderValue::from_str(authority.as_str())
                .map_err(|_| TargetError::Host(authority.to_string()))?;
            headers.push((HOST, value));
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| TargetError::Url(url.to_string(), e))?;
        Ok(Self {
            url: url.to_string(),
            method,
            addresses,
            paths: Arc::new([path]),
            next_path: Arc::default(),
            headers,
            body,
        })
    }

    /// A target whose requests name each id of `ids` in turn in place of
    /// `{id}` in `url` (e.g. `http://h/items/{id}` over `1..=5000`, to read
    /// more distinct resources than a cache holds), round robin over all
    /// connections together.
    pub async fn with_ids(
        url: &str,
        ids: RangeInclusive<u64>,
        method: Method,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Bytes,
    ) -> Result<Self, TargetError> {
        if !url.contains(ID_PLACEHOLDER) {
            return Err(TargetError::NoIdPlaceholder(url.to_string()));
        }
        let (start, end) = (*ids.start(), *ids.end());
        if end.saturating_sub(start) >= MAX_IDS {
            return Err(TargetError::TooManyIds { start, end });
        }
        let with_id = |id: u64| url.replace(ID_PLACEHOLDER, &id.to_string());
        let mut target = Self::new(&with_id(start), method, headers, body).await?;
        let paths = ids
            .map(|id| {
                let url = with_id(id);
                let uri: Uri = url.parse().map_err(|e| TargetError::Url(url.clone(), e))?;
                uri.path_and_query()
                    .map_or("/", |p| p.as_str())
                    .parse()
                    .map_err(|e| TargetError::Url(url, e))
            })
            .collect::<Result<Vec<Uri>, _>>()?;
        target.paths = paths.into();
        target.url = url.to_string();
        Ok(target)
    }

    /// The next request's target (`/path?query`).
    pub(super) fn request_uri(&self) -> Uri {
        match &*self.paths {
            [one] => one.clone(),
            many => many[self.next_path.fetch_add(1, Ordering::Relaxed) % many.len()].clone(),
        }
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.request_uri();
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        request
    }
}

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    /// A complete answer, whatever its status.
    Answered(http::StatusCode),
    /// The connection could not be opened (the message says why and where).
    Connect(String),
    /// The connection failed while the request was sent or answered.
    Io(String),
    /// The deadline passed first.
    Timeout,
}

/// A connection of its own to the target, opened when first needed.
pub struct Connection<'a> {
    target: &'a Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl<'a> Connection<'a> {
    pub fn new(target: &'a Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// Sends the request and reads the whole answer, by `deadline`
    /// (connecting first if the connection is not open).
    pub async fn send(&mut self, deadline: Instant) -> Outcome {
        match timeout_at(deadline, self.exchange()).await {
            Ok(outcome) => {
                if !matches!(outcome, Outcome::Answered(_)) {
                    self.sender = None;
                }
                outcome
            }
            Err(_) => {
                // Whatever was half-sent or half-read makes the connection
                // unusable: the next request opens a new one.
                self.sender = None;
                Outcome::Timeout
            }
        }
    }

    async fn exchange(&mut self) -> Outcome {
        // A connection the server closed (after `Connection: close`, or idle)
        // is replaced without counting a failure.
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => match self.open().await {
                Ok(sender) => self.sender.insert(sender),
                Err(outcome) => return outcome,
            },
        };
        let response = match sender.send_request(self.target.request()).await {
            Ok(response) => response,
            Err(error) => return Outcome::Io(describe_hyper(&error)),
        };
        let status = response.status();
        match response.into_body().collect().await {
            Ok(_) => Outcome::Answered(status),
            Err(error) => Outcome::Io(describe_hyper(&error)),
        }
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, Outcome> {
        let addresses = &self.target.addresses[..];
        let stream = TcpStream::connect(addresses).await.map_err(|error| {
            let to = match addresses {
                [one] => one.to_string(),
                _ => self.target.url.clone(),
            };
            Outcome::Connect(format!("{} to {to}", error.kind()))
        })?;
        // Requests are small and answered one at a time: Nagle would only
        // delay them.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| Outcome::Connect(describe_hyper(&error)))?;
        // The connection is driven by a task of its own, which ends when the
        // sender is dropped or the peer closes.
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// hyper's message and its cause (`connection closed before message
/// completed`, `connection reset by peer`).
fn describe_hyper(error: &hyper::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}
