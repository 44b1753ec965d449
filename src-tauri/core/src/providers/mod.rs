//! Upstream providers: where a request can go. One trait, one file per kind; the config's
//! `kind` tag selects the variant of [`AnyProvider`], so config and code have one shape.
//!
//! A provider answers with an [`Upstream`]: a response head and a body already in
//! Anthropic's format (passed through or translated), not yet sent to the client, so the
//! router can still fail over on its status.
//!
//! Imports: `config`, `translate`, `wire`, `net`; never the router or the pipeline (they
//! call providers, not the other way).

pub mod anthropic;
pub mod claude;
mod health;
pub mod lmstudio;
pub mod openai;
pub mod qualify;

use secrecy::ExposeSecret;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};

pub use health::{
    Admission, Breaker, Capabilities, Health, HealthBoard, HealthReport, Instance, Loading, Loads,
    ModelInfo,
};

pub use claude::Signatures;

use crate::config::{ProviderConfig, ProviderKind};
use crate::net::{Http, NetError};
use crate::wire::body::MessagesBody;
use crate::wire::ApiError;

/// A response body in Anthropic's format.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// An answer from a provider, before it is committed to the client.
pub struct Upstream {
    pub status: StatusCode,
    /// Headers for the client (hop-by-hop ones already removed).
    pub headers: HeaderMap,
    pub body: BodyStream,
}

impl Upstream {
    /// A complete JSON answer.
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Upstream {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let bytes = Bytes::from(value.to_string());
        Upstream {
            status,
            headers,
            body: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
        }
    }

    /// An Anthropic-shaped error answer, as if the provider had sent it.
    pub fn error(error: &ApiError) -> Upstream {
        Self::json(error.status, &error.body())
    }

    /// Statuses worth trying another target for: rate limits, overload, server errors.
    pub fn should_fail_over(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status.as_u16() == 529
            || self.status.is_server_error()
    }
}

/// What the proxy asks of a provider for one Messages (or count_tokens) request.
pub struct MessagesRequest<'a> {
    /// The body for this target (what [`Provider::prepare`] made of the client's): its
    /// bytes, parsed on demand (translating providers need it).
    pub body: &'a MessagesBody,
    /// The client's body as it came.
    pub original: &'a MessagesBody,
    /// The model to ask for (the target's, or the client's).
    pub model: &'a str,
    /// The model the client asked for.
    pub requested_model: Option<&'a str>,
    pub stream: bool,
    /// The path and query the client used, e.g. `/v1/messages?beta=true`.
    pub path_and_query: &'a str,
    pub client_headers: &'a HeaderMap,
    /// Estimated input tokens (for context-window checks and clamping).
    pub input_tokens: u64,
}

/// What a provider is told of a request before it is sent, to shape its copy.
pub struct Outgoing<'a> {
    pub body: &'a MessagesBody,
    /// The model the route chose for this target.
    pub model: &'a str,
    pub requested_model: Option<&'a str>,
    /// Routing is paused: pass the request on as it came.
    pub untouched: bool,
    /// Which Claude model signed which thinking block.
    pub signatures: &'a Signatures,
}

/// A request rewritten for its target, and what was changed, in words.
pub struct Shaped {
    pub body: MessagesBody,
    pub changes: Vec<String>,
}

/// What an answer means beyond its status, as its provider knows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// Its status and headers are the Claude quota's (Anthropic's own API).
    pub carries_quota: bool,
    /// The provider's own key was refused: another target may still answer (the
    /// client's key refused is the client's answer).
    pub own_key_refused: bool,
    /// Its thinking blocks are signed by the model that wrote them.
    pub signs_thinking: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider {provider} is unreachable: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("provider {provider} sent no response headers within {}s", after.as_secs())]
    Timeout { provider: String, after: Duration },
    #[error("provider {provider} went silent for {}s after it began to answer", after.as_secs())]
    Stalled { provider: String, after: Duration },
    #[error("provider {provider}: the request failed: {reason}")]
    Failed { provider: String, reason: String },
    #[error("provider {provider}: its API key is not a valid header value")]
    BadKey { provider: String },
    #[error("provider {provider} has no API key: set {var}")]
    MissingKey { provider: String, var: String },
    #[error("provider {provider} cannot take this request: {reason}")]
    Unfit { provider: String, reason: String },
}

impl ProviderError {
    /// Classifies a transport error (told without its URL, which could carry a key).
    pub fn from_net(provider: &str, error: NetError) -> ProviderError {
        let provider = provider.to_owned();
        match error {
            NetError::Connect(reason) | NetError::Tls(reason) => {
                ProviderError::Unreachable { provider, reason }
            }
            NetError::Timeout(after) => ProviderError::Timeout { provider, after },
            other => ProviderError::Failed {
                provider,
                reason: other.to_string(),
            },
        }
    }

    /// The error as the client sees it.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ProviderError::Timeout { .. } | ProviderError::Stalled { .. } => {
                ApiError::timeout(self.to_string())
            }
            ProviderError::Unfit { .. } => ApiError::invalid_request(self.to_string()),
            _ => ApiError::bad_gateway(self.to_string()),
        }
    }

    /// Whether the provider itself is at fault (counts against its health).
    pub fn is_provider_fault(&self) -> bool {
        !matches!(self, ProviderError::Unfit { .. })
    }
}

/// What every provider kind does.
#[allow(async_fn_in_trait)]
pub trait Provider {
    fn config(&self) -> &ProviderConfig;

    /// The request this target receives, when it is not the client's as it came (with
    /// the route's model in place): what the target's rules ask, what it must not get.
    fn prepare(&self, outgoing: &Outgoing<'_>) -> Option<Shaped>;

    /// What an answer with `status` means, as this provider knows.
    fn observe(&self, status: StatusCode) -> Reading;

    /// Sends a Messages request; returns once the response head is known.
    async fn messages(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError>;

    /// Answers `count_tokens` (by asking, or by a local estimate).
    async fn count_tokens(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError>;

    /// Asks the provider what it serves; `None` when it has nothing to ask (Anthropic's
    /// API needs credentials only the client has).
    async fn check(&self, http: &Http) -> Option<Result<ModelInfo, String>>;
}

/// A configured provider of any kind.
pub enum AnyProvider {
    Anthropic(anthropic::AnthropicProvider),
    OpenAi(openai::OpenAiProvider),
}

impl AnyProvider {
    pub fn new(config: ProviderConfig, board: HealthBoard) -> AnyProvider {
        match config.kind {
            ProviderKind::Anthropic => {
                AnyProvider::Anthropic(anthropic::AnthropicProvider::new(config, board))
            }
            ProviderKind::OpenAi => AnyProvider::OpenAi(openai::OpenAiProvider::new(config, board)),
        }
    }

    pub fn name(&self) -> &str {
        &self.config().name
    }

    /// Set when the proxy loads this provider's model (LM Studio with `load_context`).
    pub fn loader(&self) -> Option<&lmstudio::Loader> {
        match self {
            AnyProvider::Anthropic(p) => p.loader.as_ref(),
            AnyProvider::OpenAi(p) => p.loader.as_ref(),
        }
    }

    /// Loads the model if a request of `input_tokens` needs it (see [`lmstudio`]); tells
    /// `loading` when a load begins.
    pub async fn ensure_loaded(
        &self,
        http: &Http,
        board: &HealthBoard,
        input_tokens: u64,
        loading: tokio::sync::oneshot::Sender<()>,
    ) -> Result<(), ProviderError> {
        let Some(loader) = self.loader() else {
            return Ok(());
        };
        let config = self.config();
        let headers = bearer_headers(config)?;
        let load = loader.ensure(http, config, &headers, board, input_tokens, loading);
        tokio::time::timeout(lmstudio::LOAD_TIMEOUT, load)
            .await
            .map_err(|_| ProviderError::Timeout {
                provider: config.name.clone(),
                after: lmstudio::LOAD_TIMEOUT,
            })?
    }
}

impl Provider for AnyProvider {
    fn config(&self) -> &ProviderConfig {
        match self {
            AnyProvider::Anthropic(p) => p.config(),
            AnyProvider::OpenAi(p) => p.config(),
        }
    }

    fn prepare(&self, outgoing: &Outgoing<'_>) -> Option<Shaped> {
        match self {
            AnyProvider::Anthropic(p) => p.prepare(outgoing),
            AnyProvider::OpenAi(p) => p.prepare(outgoing),
        }
    }

    fn observe(&self, status: StatusCode) -> Reading {
        match self {
            AnyProvider::Anthropic(p) => p.observe(status),
            AnyProvider::OpenAi(p) => p.observe(status),
        }
    }

    async fn messages(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        match self {
            AnyProvider::Anthropic(p) => p.messages(http, request).await,
            AnyProvider::OpenAi(p) => p.messages(http, request).await,
        }
    }

    async fn count_tokens(
        &self,
        http: &Http,
        request: &MessagesRequest<'_>,
    ) -> Result<Upstream, ProviderError> {
        match self {
            AnyProvider::Anthropic(p) => p.count_tokens(http, request).await,
            AnyProvider::OpenAi(p) => p.count_tokens(http, request).await,
        }
    }

    async fn check(&self, http: &Http) -> Option<Result<ModelInfo, String>> {
        match self {
            AnyProvider::Anthropic(p) => p.check(http).await,
            AnyProvider::OpenAi(p) => p.check(http).await,
        }
    }
}

/// A response body as the proxy reads it: errors without URLs, and bounded by the
/// provider's idle timeout — past it, the stream yields a `TimedOut` error and ends.
pub(crate) fn body_stream(
    provider: &ProviderConfig,
    response: http::Response<crate::net::Body>,
) -> BodyStream {
    use tokio_stream::StreamExt as _;
    let name = provider.name.clone();
    let idle = provider.idle_timeout;
    let chunks = http_body_util::BodyDataStream::new(response.into_body())
        .timeout(idle)
        .map(move |item| match item {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(error)) => Err(std::io::Error::other(crate::net::root_cause(&error))),
            Err(_elapsed) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("provider {name} sent nothing for {}s", idle.as_secs()),
            )),
        });
    // The first error ends the stream: nothing after a timeout or a break is trusted.
    Box::pin(futures_util::stream::unfold(
        Some(Box::pin(chunks)),
        |state| async move {
            let mut chunks = state?;
            let item = futures_util::StreamExt::next(&mut chunks).await?;
            let rest = item.is_ok().then_some(chunks);
            Some((item, rest))
        },
    ))
}

/// Sends with the provider's timeout to the response head.
pub(crate) async fn send_with_timeout(
    provider: &ProviderConfig,
    http: &Http,
    request: http::Request<http_body_util::Full<Bytes>>,
) -> Result<http::Response<crate::net::Body>, ProviderError> {
    match tokio::time::timeout(provider.timeout, http.send(request)).await {
        Err(_) => Err(ProviderError::Timeout {
            provider: provider.name.clone(),
            after: provider.timeout,
        }),
        Ok(Err(error)) => Err(ProviderError::from_net(&provider.name, error)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// A request to `url` (a provider's URL, checked when the config was read).
pub(crate) fn request(
    provider: &ProviderConfig,
    method: http::Method,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<http::Request<http_body_util::Full<Bytes>>, ProviderError> {
    let uri = url
        .parse::<http::Uri>()
        .map_err(|_| ProviderError::Failed {
            provider: provider.name.clone(),
            reason: "its base_url does not make a valid URL".to_owned(),
        })?;
    let mut request = http::Request::new(http_body_util::Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The provider's own key as a header value, marked sensitive so it never prints.
pub(crate) fn own_key(
    provider: &ProviderConfig,
) -> Result<Option<http::HeaderValue>, ProviderError> {
    use crate::config::Credentials;
    match &provider.credentials {
        Credentials::Env { key: Some(key), .. } => {
            let mut value = http::HeaderValue::from_str(key.expose_secret()).map_err(|_| {
                ProviderError::BadKey {
                    provider: provider.name.clone(),
                }
            })?;
            value.set_sensitive(true);
            Ok(Some(value))
        }
        Credentials::Env { key: None, var } => Err(ProviderError::MissingKey {
            provider: provider.name.clone(),
            var: var.clone(),
        }),
        _ => Ok(None),
    }
}

/// Headers carrying the provider's key, if it has one, as a bearer token (OpenAI's
/// APIs, LM Studio's own).
pub(crate) fn bearer_headers(provider: &ProviderConfig) -> Result<HeaderMap, ProviderError> {
    let mut headers = HeaderMap::new();
    if let Some(key) = own_key(provider)? {
        let mut bearer = crate::net::bearer(key.to_str().unwrap_or_default()).ok_or_else(|| {
            ProviderError::BadKey {
                provider: provider.name.clone(),
            }
        })?;
        bearer.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, bearer);
    }
    Ok(headers)
}

/// `model = "auto"`: whatever the server has loaded.
pub const AUTO: &str = "auto";

/// The model to ask `provider` for: `wanted` (the route's, else the provider's), with
/// `auto` resolved to the loaded model the last health check found (checking now if none
/// has yet).
pub(crate) async fn resolve_model<'a>(
    provider: &impl Provider,
    board: &HealthBoard,
    http: &Http,
    wanted: &'a str,
) -> Result<std::borrow::Cow<'a, str>, ProviderError> {
    if wanted != AUTO {
        return Ok(std::borrow::Cow::Borrowed(wanted));
    }
    let name = &provider.config().name;
    let mut info = board.report(name).info;
    if info.is_none() {
        // No health check has answered yet: ask now rather than fail the request.
        match provider.check(http).await {
            Some(Ok(fresh)) => {
                board.set_info(name, fresh.clone());
                info = Some(fresh);
            }
            // It did not answer the models check: down, not merely empty.
            Some(Err(reason)) => {
                return Err(ProviderError::Unreachable {
                    provider: name.clone(),
                    reason,
                })
            }
            None => {}
        }
    }
    info.and_then(|i| i.loaded.or_else(|| i.models.into_iter().next()))
        .map(std::borrow::Cow::Owned)
        .ok_or_else(|| ProviderError::Unfit {
            provider: name.clone(),
            reason: "no model is loaded (model = \"auto\"); load one in LM Studio".to_owned(),
        })
}

/// What every server but Anthropic's gets: the request without what is Anthropic's alone
/// (see [`crate::translate::anthropic_only`]).
pub(crate) fn without_anthropic_only(outgoing: &Outgoing<'_>) -> Option<Shaped> {
    let (body, changes) = crate::translate::anthropic_only::strip(outgoing.body.json())?;
    Some(Shaped {
        body: MessagesBody::from_value(body),
        changes,
    })
}

/// Every configured provider, built from the config (rebuilt when it changes).
pub struct Providers(Vec<AnyProvider>);

impl Providers {
    pub fn from_config(config: &crate::config::Config, board: &HealthBoard) -> Providers {
        board.set_breaker(config.routing.breaker);
        Providers(
            config
                .providers
                .iter()
                .map(|p| AnyProvider::new(p.clone(), board.clone()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&AnyProvider> {
        self.0.iter().find(|p| p.name() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &AnyProvider> {
        self.0.iter()
    }
}

/// Checks every provider now and then every `every`: models, loaded model, reachability.
pub async fn run_health_checks(
    providers: std::sync::Arc<arc_swap::ArcSwap<Providers>>,
    board: HealthBoard,
    http: Http,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let current = providers.load_full();
        let checks = current.iter().map(|provider| {
            let (board, http) = (board.clone(), http.clone());
            async move {
                match provider.check(&http).await {
                    Some(Ok(info)) => {
                        board.set_info(provider.name(), info);
                        board.mark_healthy(provider.name());
                    }
                    Some(Err(error)) => board.check_failed(provider.name(), error),
                    None => {}
                }
            }
        });
        futures_util::future::join_all(checks).await;
    }
}
