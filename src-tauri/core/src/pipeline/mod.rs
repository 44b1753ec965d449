//! A request's way through the core, the same for the proxy, the jobs worker and route
//! preview: [`prepare`] (parse, classify, route), then one loop ([`walk`]) that tries the
//! chain's targets through their gates and breakers, retries, holds for the quota where a
//! `queue` target says so, and [`commit`]s an answer only once it is known to be one.
//! Identical non-streaming requests share one call ([`coalesce`]); every answer reaches
//! its client through [`deliver`], which guarantees its end and writes the request log;
//! [`sessions`] remembers where each Claude Code session's latest request went.
//!
//! [`Core`] is the shared state every request runs on, built once at start.
//!
//! May import everything of the core below it (config, classify, router, queue,
//! providers, quota, store, wire); nothing of HTTP servers or the app.

mod catalog;
mod coalesce;
mod commit;
mod core;
mod deliver;
pub mod drift;
pub mod jobs;
mod judge;
mod prepare;
pub mod sessions;
mod walk;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

pub use self::core::{Core, CoreEvent, Parts};
pub use coalesce::Coalescer;
pub use deliver::{Delivered, Pending};
pub use prepare::{Origin, Prepared};

use crate::providers::{AnyProvider, BodyStream, Provider};
use crate::wire::ApiError;

/// An answer committed for a client: a target answered (or every target failed, and this
/// is the error to show).
pub struct Answer {
    pub status: StatusCode,
    /// Headers for the client, routing headers (`x-pai-*`) included.
    pub headers: HeaderMap,
    pub body: AnswerBody,
    /// The target that answered, e.g. `claude:opus` (`None`: the proxy's own error).
    pub target: Option<String>,
    /// The answer of an identical request's call, shared.
    pub shared: bool,
}

pub enum AnswerBody {
    /// A whole body: non-streaming answers are read to their end before they are
    /// committed, so a stall or a broken body can still fail over.
    Full(Bytes),
    /// An Anthropic event stream whose first event has arrived (and was not an error
    /// worth failing over for). [`deliver`] makes sure it ends in `message_stop` or an
    /// `error` event.
    Events(BodyStream),
    /// Anything else, relayed as it comes (`/v1/*` pass-through).
    Raw(BodyStream),
}

impl Answer {
    /// The proxy's own answer: an error in Anthropic's shape.
    pub fn error(error: &ApiError) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-pai-error", HeaderValue::from_static("proxy"));
        Answer {
            status: error.status,
            headers,
            body: AnswerBody::Full(Bytes::from(error.body().to_string())),
            target: None,
            shared: false,
        }
    }

    /// The whole body, for callers that need it at once (jobs). `None` for streams.
    pub fn full_body(&self) -> Option<&Bytes> {
        match &self.body {
            AnswerBody::Full(body) => Some(body),
            _ => None,
        }
    }
}

/// Runs a prepared request to its answer. A non-streaming Messages request shares the
/// call of an identical one in flight (when coalescing is on); a stream held for the
/// quota is answered at once with headers and `ping` events, its answer following when
/// the wait ends.
pub async fn run(prepared: Arc<Prepared>) -> Answer {
    catalog::refresh(&prepared.core, &prepared.headers);
    prepared
        .core
        .drift
        .check(prepared.body.bytes(), &prepared.headers);
    if prepared.coalescable() {
        return coalesce::coalesced(prepared).await;
    }
    if !prepared.stream {
        return prepared.answer(None).await;
    }
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let walking = prepared.clone();
    let mut answer = Box::pin(async move { walking.answer(Some(held_tx)).await });
    tokio::select! {
        answer = &mut answer => answer,
        Ok(()) = held_rx => {
            let ping_every = prepared.core.config().queue.ping_every;
            let mut held = deliver::held_stream(answer, ping_every);
            prepared.add_route_headers(&mut held, Some("queue"));
            held
        }
    }
}

/// Any other `/v1/*` request: to Anthropic's provider as it came, its answer relayed as
/// it comes (nothing to route, nothing to fail over to).
pub async fn pass_through(
    core: &Core,
    method: http::Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Answer {
    let config = core.config();
    let providers = core.providers.load_full();
    let provider = crate::router::claude_provider(&config).and_then(|p| providers.get(&p.name));
    let Some(AnyProvider::Anthropic(anthropic)) = provider else {
        return Answer::error(&ApiError::bad_gateway(
            "no provider of kind \"anthropic\" is configured",
        ));
    };
    let name = anthropic.config().name.clone();
    match anthropic
        .send_raw(&core.http, method, path_and_query, headers, body)
        .await
    {
        Ok(upstream) => Answer {
            status: upstream.status,
            headers: upstream.headers,
            body: AnswerBody::Raw(upstream.body),
            target: Some(name),
            shared: false,
        },
        Err(error) => {
            tracing::warn!(%error, "upstream request failed");
            if error.is_provider_fault() {
                core.health.mark_unhealthy(&name, error.to_string());
            }
            let mut answer = Answer::error(&error.to_api_error());
            answer.target = Some(name);
            answer
        }
    }
}
