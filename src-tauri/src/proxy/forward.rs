//! The Messages endpoints and every other `/v1/*` path: read the body, classify, route,
//! walk the chain of targets until one answers, and relay that answer.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;

use super::chain::{ChainCtx, ChainEnd};
use super::error::ApiError;
use super::inspect::MessagesSummary;
use super::relay::{relay, Pending};
use super::ProxyState;
use crate::classify::{self, Classification, Complexity, RequestFacts};
use crate::providers::{AnyProvider, ProviderError, Upstream};
use crate::queue::{Buffered, Priority};
use crate::router::{self, Decision, Mode, Needs, Situation};
use crate::store::RequestRecord;

/// Largest request body accepted (Anthropic's own limit for Messages is 32 MB).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// `POST /v1/messages`.
pub async fn messages(State(state): State<ProxyState>, request: Request) -> Response {
    routed(state, request, false).await
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(state): State<ProxyState>, request: Request) -> Response {
    routed(state, request, true).await
}

fn new_record(method: &Method, path: &str) -> RequestRecord {
    RequestRecord {
        started_at: Utc::now(),
        method: method.to_string(),
        path: path.to_owned(),
        model: None,
        stream: false,
        target: None,
        status: None,
        outcome: String::new(),
        ttfb_ms: None,
        latency_ms: 0.0,
        input_tokens: None,
        output_tokens: None,
        request_bytes: 0,
        response_bytes: 0,
        complexity: None,
        quota_state: None,
        route_reason: None,
    }
}

async fn routed(state: ProxyState, request: Request, is_count: bool) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path_and_query = path_and_query(&parts.uri);
    let mut record = new_record(&parts.method, parts.uri.path());
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(error) => return reject(&state, record, started, error),
    };
    record.request_bytes = body.len() as u64;
    let ctx = match prepare(&state, body, parts.headers, path_and_query, is_count, None) {
        Ok(ctx) => Arc::new(ctx),
        Err(error) => return reject(&state, record, started, error),
    };
    record.model = ctx.requested_model.clone();
    record.stream = ctx.stream;
    record.complexity = Some(ctx.decision.complexity.name().to_owned());
    record.quota_state = Some(ctx.decision.quota_state.name().to_owned());
    record.route_reason = Some(ctx.decision.reason.clone());
    tracing::debug!(reason = %ctx.decision.reason, "routing");
    let config = state.config();
    let coalesce = config.queue.coalesce && !record.stream && !is_count;
    if coalesce {
        return coalesced(ctx, record, started).await;
    }
    let mut failures = ctx.new_failures();
    let mut end = ctx.run(0, &mut failures).await;
    loop {
        match end {
            ChainEnd::Answered { upstream, target } => {
                return commit(&state, upstream, &target, &ctx.decision, record, started)
            }
            ChainEnd::Failed(error) => return fail(&state, &ctx.decision, record, started, error),
            ChainEnd::Hold { next } if ctx.stream => {
                return held_stream(ctx, next, failures, record, started);
            }
            ChainEnd::Hold { next } => {
                let released = state
                    .queue
                    .wait_for_quota(&state.quota, config.queue.max_wait)
                    .await;
                end = ctx.resume(next, released, &mut failures).await;
            }
        }
    }
}

fn fail(
    state: &ProxyState,
    decision: &Decision,
    record: RequestRecord,
    started: Instant,
    error: ApiError,
) -> Response {
    let retry_after = (error.status.as_u16() == 529).then(|| quota_retry_after(state));
    let mut response = reject_with(state, record, started, error, "upstream_error");
    add_route_headers(response.headers_mut(), decision);
    if let Some(secs) = retry_after {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
    }
    response
}

/// Parses, classifies and routes a Messages (or count_tokens) body. `priority` overrides
/// the one the complexity implies (async jobs are `Batch`).
pub(crate) fn prepare(
    state: &ProxyState,
    body: Bytes,
    headers: HeaderMap,
    path_and_query: String,
    is_count: bool,
    priority: Option<Priority>,
) -> Result<ChainCtx, ApiError> {
    let summary = MessagesSummary::parse(&body)?;
    let facts = RequestFacts::from_summary(&summary, body.len());
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let config = state.config();
    let mode = state.mode.get();
    let explicit = headers
        .get("x-pai-complexity")
        .and_then(|v| v.to_str().ok());
    let classification = if mode == Mode::Paused {
        Classification {
            complexity: Complexity::Medium,
            score: 0.0,
            reason: "paused: not classified".to_owned(),
        }
    } else {
        classify::classify(&facts, explicit, &config.classify)
    };
    let quota = state.quota.snapshot();
    let decision = router::plan(
        &config,
        Situation {
            mode,
            quota: &quota,
            health: &state.health,
            outcomes: &state.outcomes,
        },
        &classification,
        summary.model(),
        Needs {
            input_tokens: facts.input_tokens,
            tools: facts.tools > 0,
            images: facts.has_images,
        },
    );
    let priority = priority.unwrap_or(if decision.complexity == Complexity::Simple {
        Priority::Background
    } else {
        Priority::Interactive
    });
    Ok(ChainCtx {
        ticket: state.queue.ticket(),
        state: state.clone(),
        decision,
        classification,
        requested_model: summary.model().map(str::to_owned),
        stream: summary.is_stream() && !is_count,
        input_tokens: facts.input_tokens,
        needs: Needs {
            input_tokens: facts.input_tokens,
            tools: facts.tools > 0,
            images: facts.has_images,
        },
        body,
        json,
        headers,
        path_and_query,
        is_count,
        mode,
        priority,
    })
}

/// Seconds until the quota is expected back: a 429's reset, else the window's reset.
fn quota_retry_after(state: &ProxyState) -> i64 {
    let snapshot = state.quota.snapshot();
    snapshot
        .rate_limited_until
        .or(snapshot.resets_at)
        .map(|t| (t - Utc::now()).num_seconds().max(1))
        .unwrap_or(60)
}

/// A streaming request held for the quota: the client gets its headers and `ping` events
/// at once and then, when the quota recovers (or the wait ends), the answer of the rest
/// of the chain — or an `event: error` in Anthropic's shape.
fn held_stream(
    ctx: Arc<ChainCtx>,
    next: usize,
    failures: Vec<String>,
    mut record: RequestRecord,
    started: Instant,
) -> Response {
    let state = ctx.state.clone();
    let config = state.config();
    let (max_wait, ping_every) = (config.queue.max_wait, config.queue.ping_every);
    let decision = ctx.decision.clone();
    let recorder = state.recorder.clone();
    let ping = || {
        Ok::<_, std::io::Error>(Bytes::from_static(
            b"event: ping\ndata: {\"type\": \"ping\"}\n\n",
        ))
    };
    let body = async_stream::stream! {
        yield ping();
        let mut failures = failures;
        let waited = {
            let wait = state.queue.wait_for_quota(&state.quota, max_wait);
            tokio::pin!(wait);
            let mut ticks = tokio::time::interval(ping_every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    released = &mut wait => break released,
                    _ = ticks.tick() => yield ping(),
                }
            }
        };
        let mut end = ctx.resume(next, waited, &mut failures).await;
        loop {
            match end {
                ChainEnd::Answered { upstream, .. } if upstream.status.is_success() => {
                    let mut inner = upstream.body;
                    while let Some(chunk) = inner.next().await {
                        yield chunk;
                    }
                    break;
                }
                ChainEnd::Answered { upstream, .. } => {
                    let status = upstream.status;
                    let mut bytes = Vec::new();
                    let mut inner = upstream.body;
                    while let Some(Ok(chunk)) = inner.next().await {
                        bytes.extend_from_slice(&chunk);
                    }
                    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    let error = ApiError::new(
                        status,
                        crate::translate::response::error_type(status.as_u16()),
                        answer["error"]["message"].as_str().unwrap_or("the upstream failed").to_owned(),
                    );
                    yield Ok(Bytes::from(error.sse_event()));
                    break;
                }
                ChainEnd::Failed(error) => {
                    yield Ok(Bytes::from(error.sse_event()));
                    break;
                }
                // Another queue target: the wait is over, go on past it.
                ChainEnd::Hold { next } => end = ctx.run(next, &mut failures).await,
            }
        }
    };
    record.target = Some("queue".to_owned());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let upstream = Upstream {
        status: StatusCode::OK,
        headers,
        body: Box::pin(body),
    };
    let pending = Pending::new(recorder, record, started);
    let mut response = relay(upstream, pending);
    add_route_headers(response.headers_mut(), &decision);
    if let Ok(value) = HeaderValue::from_str("queue") {
        response.headers_mut().insert("x-pai-route", value);
    }
    response
}

/// Non-streaming requests: identical ones in flight share one upstream call.
async fn coalesced(ctx: Arc<ChainCtx>, mut record: RequestRecord, started: Instant) -> Response {
    let route: Vec<&str> = ctx
        .decision
        .chain
        .iter()
        .map(|c| c.target.as_str())
        .collect();
    let key = crate::queue::coalesce_key(&ctx.body, &ctx.headers, &route.join(","));
    let work_ctx = ctx.clone();
    let (answer, joined) = ctx
        .state
        .queue
        .coalescer()
        .run(key, move || Box::pin(buffered_answer(work_ctx)))
        .await;
    if joined {
        tracing::debug!("joined an identical request in flight");
        record.outcome = "coalesced".to_owned();
    }
    record.target = answer
        .headers
        .get("x-pai-route")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let upstream = Upstream {
        status: answer.status,
        headers: answer.headers.clone(),
        body: Box::pin(futures_util::stream::once({
            let body = answer.body.clone();
            async move { Ok(body) }
        })),
    };
    let outcome = if joined { "coalesced" } else { "ok" };
    let mut pending = Pending::new(ctx.state.recorder.clone(), record, started);
    pending.record.outcome = outcome.to_owned();
    relay(upstream, pending)
}

/// Runs the whole chain (waiting for the quota where the chain says so) and buffers the
/// answer so that several clients can have it.
async fn buffered_answer(ctx: Arc<ChainCtx>) -> Buffered {
    let mut failures = ctx.new_failures();
    let mut end = ctx.run(0, &mut failures).await;
    let (upstream, target) = loop {
        match end {
            ChainEnd::Answered { upstream, target } => break (upstream, Some(target)),
            ChainEnd::Failed(error) => {
                let mut upstream = Upstream::error(&error);
                if error.status.as_u16() == 529 {
                    let secs = quota_retry_after(&ctx.state).to_string();
                    if let Ok(value) = HeaderValue::from_str(&secs) {
                        upstream.headers.insert("retry-after", value);
                    }
                }
                break (upstream, None);
            }
            ChainEnd::Hold { next } => {
                let max_wait = ctx.state.config().queue.max_wait;
                let released = ctx
                    .state
                    .queue
                    .wait_for_quota(&ctx.state.quota, max_wait)
                    .await;
                end = ctx.resume(next, released, &mut failures).await;
            }
        }
    };
    let mut headers = upstream.headers;
    add_route_headers(&mut headers, &ctx.decision);
    if let Some(target) = target.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert("x-pai-route", target);
    }
    headers.remove(header::CONTENT_LENGTH);
    let mut body = Vec::new();
    let mut stream = upstream.body;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    Buffered {
        status: upstream.status,
        headers,
        body: Bytes::from(body),
    }
}

fn commit(
    state: &ProxyState,
    upstream: Upstream,
    target: &str,
    decision: &Decision,
    mut record: RequestRecord,
    started: Instant,
) -> Response {
    record.target = Some(target.to_owned());
    state
        .last_route
        .send_replace(Some(format!("{target} ({})", decision.complexity.name())));
    let pending = Pending::new(state.recorder.clone(), record, started);
    let mut response = relay(upstream, pending);
    add_route_headers(response.headers_mut(), decision);
    if let Ok(value) = HeaderValue::from_str(target) {
        response.headers_mut().insert("x-pai-route", value);
    }
    response
}

/// The routing headers every answer carries (`x-pai-route` is set where the target is known).
fn add_route_headers(headers: &mut HeaderMap, decision: &Decision) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("x-pai-complexity", decision.complexity.name());
    set("x-pai-quota-state", decision.quota_state.name());
}

/// Any other `/v1/*` request: passed through to Anthropic's provider as is.
pub async fn passthrough(State(state): State<ProxyState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path_and_query = path_and_query(&parts.uri);
    let mut record = new_record(&parts.method, parts.uri.path());
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(error) => return reject(&state, record, started, error),
    };
    record.request_bytes = body.len() as u64;
    let config = state.config();
    let providers = state.providers.load_full();
    let Some(provider) = router::claude_provider(&config).and_then(|p| providers.get(&p.name))
    else {
        return reject(
            &state,
            record,
            started,
            ApiError::bad_gateway("no provider of kind \"anthropic\" is configured"),
        );
    };
    let AnyProvider::Anthropic(anthropic) = provider else {
        return reject(
            &state,
            record,
            started,
            ApiError::bad_gateway("no Anthropic provider"),
        );
    };
    record.target = Some(provider.name().to_owned());
    let sent = anthropic
        .send_raw(
            &state.http,
            parts.method.clone(),
            &path_and_query,
            &parts.headers,
            body,
        )
        .await;
    match sent {
        Ok(upstream) => {
            let pending = Pending::new(state.recorder.clone(), record, started);
            relay(upstream, pending)
        }
        Err(error) => {
            let failed = error_response(&state, provider.name(), &error);
            reject_with(&state, record, started, failed, "upstream_error")
        }
    }
}

fn error_response(state: &ProxyState, provider: &str, error: &ProviderError) -> ApiError {
    tracing::warn!(%error, "upstream request failed");
    if error.is_provider_fault() {
        state.health.mark_unhealthy(provider, error.to_string());
    }
    error.to_api_error()
}

fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] without reading it all.
pub(super) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::too_large(format!(
            "request body exceeds the proxy's limit of {} MiB",
            MAX_BODY_BYTES >> 20
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            let mut source: &dyn std::error::Error = &error;
            while let Some(next) = source.source() {
                if next.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                source = next;
            }
            ApiError::invalid_request(format!("cannot read the request body: {error}"))
        })
}

fn reject(
    state: &ProxyState,
    record: RequestRecord,
    started: Instant,
    error: ApiError,
) -> Response {
    reject_with(state, record, started, error, "rejected")
}

fn reject_with(
    state: &ProxyState,
    mut record: RequestRecord,
    started: Instant,
    error: ApiError,
    outcome: &str,
) -> Response {
    record.status = Some(error.status.as_u16());
    Pending::new(state.recorder.clone(), record, started).finish(outcome);
    error.into_response()
}

/// `GET /` and `HEAD /`: Claude Code probes the base URL before its first request.
pub async fn root() -> impl IntoResponse {
    (StatusCode::OK, "PAI Orchestrator proxy is running\n")
}

/// Unknown routes: Anthropic's 404 shape.
pub async fn not_found(request: Request) -> Response {
    ApiError::not_found(format!(
        "{} {} is not a route of this proxy",
        request.method(),
        request.uri().path()
    ))
    .into_response()
}
