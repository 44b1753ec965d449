//! The Messages endpoints and every other `/v1/*` path: read the body, hand it to the
//! pipeline, and send its answer back as it comes.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::read_body;
use super::ProxyState;
use crate::rejection::error_response;
use pai_core::pipeline::{self, Answer, Delivered, Origin, Pending, Prepared};
use pai_core::store::RequestRecord;
use pai_core::wire::headers::credentials_of;
use pai_core::wire::ApiError;

/// `POST /v1/messages`.
pub async fn messages(State(state): State<ProxyState>, request: Request) -> Response {
    routed(state, request, false).await
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(State(state): State<ProxyState>, request: Request) -> Response {
    routed(state, request, true).await
}

/// A request read whole, with its log record begun.
struct Arrived {
    started: Instant,
    parts: http::request::Parts,
    path_and_query: String,
    body: bytes::Bytes,
    record: RequestRecord,
}

/// Reads the request's body; a body the proxy cannot take is answered (and logged) here.
async fn arrive(state: &ProxyState, request: Request) -> Result<Arrived, Response> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let mut record = RequestRecord::new(parts.method.as_str(), parts.uri.path());
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(error) => return Err(reject(state, record, started, error)),
    };
    record.request_bytes = body.len() as u64;
    Ok(Arrived {
        started,
        path_and_query: path_and_query(&parts.uri),
        parts,
        body,
        record,
    })
}

async fn routed(state: ProxyState, request: Request, is_count: bool) -> Response {
    let Arrived {
        started,
        parts,
        path_and_query,
        body,
        mut record,
    } = match arrive(&state, request).await {
        Ok(arrived) => arrived,
        Err(response) => return response,
    };
    if let Some(jobs) = &state.core.jobs {
        jobs.offer_credentials(&credentials_of(&parts.headers));
    }
    let prepared = match Prepared::new(
        &state.core,
        body,
        parts.headers,
        path_and_query,
        is_count,
        Origin::Client,
    ) {
        Ok(prepared) => prepared,
        Err(error) => return reject(&state, record, started, error),
    };
    prepared.describe(&mut record);
    tracing::debug!(reason = %prepared.decision.reason, "routing");
    let answer = pipeline::run(Arc::new(prepared)).await;
    respond(
        answer,
        Pending::new(state.core.recorder.clone(), record, started),
    )
}

/// The answer as an HTTP response; its body writes the request log when it ends.
pub(super) fn respond(answer: Answer, pending: Pending) -> Response {
    let (status, headers, body) = answer.deliver(pending);
    let body = match body {
        Delivered::Whole(bytes) => Body::from(bytes),
        Delivered::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Any other `/v1/*` request: passed through to Anthropic's provider as is.
pub async fn passthrough(State(state): State<ProxyState>, request: Request) -> Response {
    let Arrived {
        started,
        parts,
        path_and_query,
        body,
        record,
    } = match arrive(&state, request).await {
        Ok(arrived) => arrived,
        Err(response) => return response,
    };
    let answer = pipeline::pass_through(
        &state.core,
        parts.method.clone(),
        &path_and_query,
        &parts.headers,
        body,
    )
    .await;
    respond(
        answer,
        Pending::new(state.core.recorder.clone(), record, started),
    )
}

fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

/// The client's request cannot be taken: logged as `rejected`, answered in Anthropic's
/// shape. After a `413` the connection closes (the rest of the body was not read).
fn reject(
    state: &ProxyState,
    record: RequestRecord,
    started: Instant,
    error: ApiError,
) -> Response {
    let mut pending = Pending::new(state.core.recorder.clone(), record, started);
    pending.record.status = Some(error.status.as_u16());
    pending.finish("rejected");
    let too_large = error.status == StatusCode::PAYLOAD_TOO_LARGE;
    let mut response = error_response(error);
    if too_large {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `GET /` and `HEAD /`: Claude Code probes the base URL before its first request.
pub async fn root() -> impl IntoResponse {
    (StatusCode::OK, "PAI Orchestrator proxy is running\n")
}

/// Unknown routes: Anthropic's 404 shape.
pub async fn not_found(request: Request) -> Response {
    error_response(ApiError::not_found(format!(
        "{} {} is not a route of this proxy",
        request.method(),
        request.uri().path()
    )))
}
