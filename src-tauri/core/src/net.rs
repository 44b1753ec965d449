//! The HTTP client the core reaches every upstream with, and how its errors are told:
//! without URLs, which could carry a key in a query string.
//!
//! hyper's own pooled client: plain HTTP/1.1 for `http://` (LM Studio, loopback servers),
//! rustls with the platform's certificate verifier for `https://`, HTTP/1.1 or HTTP/2 as
//! the server offers. The TLS side is set up on the first `https://` request, so a start
//! (or `pai-orchestrator status`) does not load the system's root certificates it may
//! never use. A request is an `http::Request` built once and sent as is: no redirects
//! followed, no retries, no default headers merged in — the proxy decides all of that.
//!
//! Imports nothing of the crate.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A response body as it arrives.
pub type Body = Incoming;

/// Largest body [`Http::fetch`] reads whole.
const FETCH_LIMIT: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No connection could be made (refused, no route, DNS, TLS handshake).
    #[error("{0}")]
    Connect(String),
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
    /// The connection broke, or the answer was not HTTP.
    #[error("{0}")]
    Failed(String),
    #[error("not a valid URL")]
    BadUrl,
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

type Plain = Client<HttpConnector, Full<Bytes>>;
type Tls = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The one client: cheap to clone (a handle on the shared pools).
#[derive(Clone)]
pub struct Http {
    plain: Plain,
    tls: Arc<OnceLock<Result<Tls, String>>>,
}

impl Http {
    /// No overall timeout (streams can run for minutes; time to headers and silences
    /// are bounded per provider), no decompression (bytes pass through as sent),
    /// TCP_NODELAY, idle connections kept 90 s.
    pub fn new() -> Http {
        Http {
            plain: client(tcp()),
            tls: Arc::default(),
        }
    }

    /// Sends a request; returns once the response head has arrived.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Body>, NetError> {
        let sent = if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            self.tls()?.request(request).await
        } else {
            self.plain.request(request).await
        };
        sent.map_err(|error| {
            let reason = root_cause(&error);
            if error.is_connect() {
                NetError::Connect(reason)
            } else {
                NetError::Failed(reason)
            }
        })
    }

    /// The TLS client, set up on first use (the system's root certificates loaded once).
    fn tls(&self) -> Result<&Tls, NetError> {
        self.tls
            .get_or_init(|| {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .try_with_platform_verifier()
                    .map_err(|e| e.to_string())?
                    .https_only()
                    .enable_all_versions()
                    .wrap_connector(tcp());
                Ok(client(connector))
            })
            .as_ref()
            .map_err(|reason| NetError::Tls(reason.clone()))
    }

    /// A small request answered whole within `timeout`: checks, polls, the status
    /// command. The body is read up to 8 MB.
    pub async fn fetch(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Fetched, NetError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = url.parse::<Uri>().map_err(|_| NetError::BadUrl)?;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self.send(request).await?;
            let (head, body) = response.into_parts();
            let body = read_body(body, FETCH_LIMIT).await?;
            Ok(Fetched {
                status: head.status,
                headers: head.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| NetError::Timeout(timeout))?
    }

    /// `GET url` answered whole.
    pub async fn get(
        &self,
        url: &str,
        headers: HeaderMap,
        timeout: Duration,
    ) -> Result<Fetched, NetError> {
        self.fetch(Method::GET, url, headers, Bytes::new(), timeout)
            .await
    }
}

impl Default for Http {
    fn default() -> Http {
        Http::new()
    }
}

fn tcp() -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(10)));
    tcp
}

fn client<C>(connector: C) -> Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// An answer read whole.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    /// The body as JSON, or `None` when it is not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Reads a body to its end, refusing one larger than `limit`.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, NetError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| NetError::Failed(root_cause(error.as_ref())))
}

/// `Bearer <token>`, marked sensitive so it never prints.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The innermost cause of a transport error, e.g. "Connection refused (os error 111)";
/// never the URL, which could carry a key.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if text.is_empty() {
        "connection failed".to_owned()
    } else {
        text
    }
}
