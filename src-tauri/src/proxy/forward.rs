//! The Messages endpoints and every other `/v1/*` path: read the body, look at what
//! routing needs, send it to the provider and relay the answer.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;

use super::error::ApiError;
use super::inspect::MessagesSummary;
use super::relay::{relay, Pending};
use super::ProxyState;
use crate::config::{Credentials, ProviderConfig, ProviderKind};
use crate::providers::anthropic;
use crate::store::RequestRecord;

/// Largest request body accepted (Anthropic's own limit for Messages is 32 MB).
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// `POST /v1/messages` and `POST /v1/messages/count_tokens`.
pub async fn messages(State(state): State<ProxyState>, request: Request) -> Response {
    forward(state, request, true).await
}

/// Any other `/v1/*` request: passed through to the Anthropic provider as is.
pub async fn passthrough(State(state): State<ProxyState>, request: Request) -> Response {
    forward(state, request, false).await
}

async fn forward(state: ProxyState, request: Request, is_messages: bool) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let mut record = RequestRecord {
        started_at: Utc::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
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
    };

    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(error) => return reject(&state, record, started, error),
    };
    record.request_bytes = body.len() as u64;

    if is_messages && parts.method == Method::POST {
        match MessagesSummary::parse(&body) {
            Ok(summary) => {
                record.model = summary.model().map(str::to_owned);
                record.stream = summary.is_stream();
            }
            Err(error) => return reject(&state, record, started, error),
        }
    }

    let config = state.config();
    let Some(provider) = anthropic_provider(&config.providers) else {
        return reject(
            &state,
            record,
            started,
            ApiError::bad_gateway("no provider of kind \"anthropic\" is configured"),
        );
    };
    record.target = Some(provider.name.clone());

    let sent = anthropic::send(
        &state.http,
        provider,
        parts.method.clone(),
        &path_and_query,
        &parts.headers,
        body,
    )
    .await;
    let pending = Pending::new(state.recorder.clone(), record, started);
    match sent {
        Ok(upstream) => {
            if provider.credentials == Credentials::PassThrough {
                // Anthropic's own answer: its rate-limit headers and 429s are the quota.
                state
                    .quota
                    .observe_response(upstream.status(), upstream.headers());
            }
            if upstream.status().is_server_error() {
                state
                    .health
                    .mark_unhealthy(&provider.name, format!("answered {}", upstream.status()));
            } else {
                state.health.mark_healthy(&provider.name);
            }
            relay(upstream, pending)
        }
        Err(error) => {
            tracing::warn!(%error, "upstream request failed");
            state
                .health
                .mark_unhealthy(&provider.name, error.to_string());
            let api_error = error.to_api_error();
            let mut pending = pending;
            pending.record.status = Some(api_error.status.as_u16());
            pending.finish("upstream_error");
            api_error.into_response()
        }
    }
}

/// The provider Anthropic-bound traffic goes to: the first `anthropic`-kind provider that
/// takes the client's credentials, else the first `anthropic`-kind provider.
fn anthropic_provider(providers: &[ProviderConfig]) -> Option<&ProviderConfig> {
    let anthropic = || {
        providers
            .iter()
            .filter(|p| p.kind == ProviderKind::Anthropic)
    };
    anthropic()
        .find(|p| p.credentials == Credentials::PassThrough)
        .or_else(|| anthropic().next())
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] without reading it all.
async fn read_body(headers: &axum::http::HeaderMap, body: Body) -> Result<Bytes, ApiError> {
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
    mut record: RequestRecord,
    started: Instant,
    error: ApiError,
) -> Response {
    record.status = Some(error.status.as_u16());
    Pending::new(state.recorder.clone(), record, started).finish("rejected");
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
