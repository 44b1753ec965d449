//! The Messages endpoints and every other `/v1/*` path: read the body, classify, route,
//! walk the chain of targets until one answers, and relay that answer.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;

use super::error::ApiError;
use super::inspect::MessagesSummary;
use super::relay::{relay, Pending};
use super::ProxyState;
use crate::classify::{self, Classification, Complexity, RequestFacts};
use crate::config::Credentials;
use crate::providers::{AnyProvider, MessagesRequest, Provider, ProviderError, Upstream};
use crate::router::{self, Candidate, Decision, Mode, Needs, Situation};
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
    let summary = match MessagesSummary::parse(&body) {
        Ok(summary) => summary,
        Err(error) => return reject(&state, record, started, error),
    };
    record.model = summary.model().map(str::to_owned);
    record.stream = summary.is_stream() && !is_count;
    let facts = RequestFacts::from_summary(&summary, body.len());
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(e) => {
            return reject(
                &state,
                record,
                started,
                ApiError::invalid_request(e.to_string()),
            )
        }
    };

    let config = state.config();
    let mode = state.mode.get();
    let explicit = parts
        .headers
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
        },
    );
    record.complexity = Some(decision.complexity.name().to_owned());
    record.quota_state = Some(decision.quota_state.name().to_owned());
    record.route_reason = Some(decision.reason.clone());
    tracing::debug!(reason = %decision.reason, "routing");

    let providers = state.providers.load_full();
    let mut failures: Vec<String> = decision
        .skipped
        .iter()
        .map(|s| format!("{}: {}", s.target, s.why))
        .collect();
    let mut last_answer: Option<(Upstream, &Candidate)> = None;
    let mut last_error: Option<ApiError> = None;
    for (index, candidate) in decision.chain.iter().enumerate() {
        let Some(name) = &candidate.provider else {
            failures.push("queue: waiting for quota is not available yet".to_owned());
            continue;
        };
        let Some(provider) = providers.get(name) else {
            continue;
        };
        if let Err(why) = state.health.admit(name) {
            failures.push(format!("{}: {why}", candidate.target));
            continue;
        }
        let is_claude = provider.config().credentials == Credentials::PassThrough;
        let fixed = (is_claude && mode != Mode::Paused)
            .then(|| router::unsigned_thinking_fix(&json))
            .flatten();
        let fixed_bytes = fixed.as_ref().map(|f| Bytes::from(f.to_string()));
        let request = MessagesRequest {
            body: fixed_bytes.as_ref().unwrap_or(&body),
            json: fixed.as_ref().unwrap_or(&json),
            model: &candidate.model,
            stream: record.stream,
            path_and_query: &path_and_query,
            client_headers: &parts.headers,
            input_tokens: facts.input_tokens,
        };
        let attempt_started = Instant::now();
        let result = if is_count {
            provider.count_tokens(&state.http, &request).await
        } else {
            provider.messages(&state.http, &request).await
        };
        match result {
            Err(error) => {
                tracing::warn!(target = %candidate.target, %error, "target failed");
                if error.is_provider_fault() {
                    state.health.mark_unhealthy(name, error.to_string());
                    state.outcomes.failure(
                        decision.complexity,
                        name,
                        error.to_string(),
                        Utc::now(),
                    );
                }
                failures.push(format!("{}: {error}", candidate.target));
                last_error = Some(error.to_api_error());
            }
            Ok(upstream) => {
                if is_claude {
                    // Anthropic's own answer: its rate-limit headers and 429s are the quota.
                    state
                        .quota
                        .observe_response(upstream.status, &upstream.headers);
                }
                let more = index + 1 < decision.chain.len();
                if fails_over(provider, &upstream) {
                    state.outcomes.failure(
                        decision.complexity,
                        name,
                        format!("HTTP {}", upstream.status.as_u16()),
                        Utc::now(),
                    );
                    if upstream.status != StatusCode::TOO_MANY_REQUESTS {
                        state.health.mark_unhealthy(
                            name,
                            format!("answered HTTP {}", upstream.status.as_u16()),
                        );
                    }
                    failures.push(format!(
                        "{}: answered HTTP {}",
                        candidate.target,
                        upstream.status.as_u16()
                    ));
                    if more {
                        last_answer = Some((upstream, candidate));
                        continue;
                    }
                } else {
                    state.health.mark_healthy(name);
                    let latency = attempt_started.elapsed().as_secs_f64() * 1000.0;
                    state.outcomes.success(decision.complexity, name, latency);
                }
                return commit(&state, upstream, candidate, &decision, record, started);
            }
        }
    }
    if let Some((upstream, candidate)) = last_answer {
        // Nothing else answered: the client gets the last real answer (a 429 with its
        // retry-after, say) rather than a made-up one.
        return commit(&state, upstream, candidate, &decision, record, started);
    }
    let error = match (last_error, decision.chain.is_empty()) {
        (Some(error), _) if failures.len() <= 1 => error,
        (_, true) if failures.is_empty() => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded_error",
            "no target is configured for this request",
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            format!("every target failed: {}", failures.join("; ")),
        ),
    };
    let mut response = reject_with(&state, record, started, error, "upstream_error");
    add_route_headers(response.headers_mut(), None, &decision);
    response
}

/// Whether to try the next target after this answer.
fn fails_over(provider: &AnyProvider, upstream: &Upstream) -> bool {
    let own_key_refused = provider.config().credentials != Credentials::PassThrough
        && matches!(upstream.status.as_u16(), 401 | 403);
    upstream.should_fail_over() || own_key_refused
}

fn commit(
    state: &ProxyState,
    upstream: Upstream,
    candidate: &Candidate,
    decision: &Decision,
    mut record: RequestRecord,
    started: Instant,
) -> Response {
    record.target = Some(candidate.target.clone());
    let pending = Pending::new(state.recorder.clone(), record, started);
    let mut response = relay(upstream, pending);
    add_route_headers(response.headers_mut(), Some(candidate), decision);
    response
}

fn add_route_headers(headers: &mut HeaderMap, candidate: Option<&Candidate>, decision: &Decision) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if let Some(candidate) = candidate {
        set("x-pai-route", &candidate.target);
    }
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
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
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
