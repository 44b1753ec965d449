//! `/v1/queue/*`: async jobs over HTTP, and the workers that run them through the router.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::chain::ChainEnd;
use super::error::ApiError;
use super::forward::{prepare, read_body};
use super::headers::CREDENTIAL_HEADERS;
use super::inspect::MessagesSummary;
use super::ProxyState;
use crate::queue::backoff::{jitter, retry_after};
use crate::queue::jobs::{retry_at, Finish, Job, JobStatus, JobStore};
use crate::queue::Priority;
use crate::quota::QuotaState;

/// Headers a job keeps (never credentials, which stay in memory).
const KEPT_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

fn store(state: &ProxyState) -> Result<&JobStore, ApiError> {
    state.jobs.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "the job store is not available",
        )
    })
}

fn parse_time(field: &str, value: Option<&Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid_request(format!("{field}: {text:?} is not an RFC 3339 time"))
            }),
        Some(other) => Err(ApiError::invalid_request(format!(
            "{field}: {other} is not an RFC 3339 time"
        ))),
    }
}

/// The named headers that are present, as text.
fn pick(headers: &HeaderMap, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// `POST /v1/queue/messages`: a Messages body plus optional `priority` (0 first – 9 last,
/// default 5), `not_before` and `deadline` (RFC 3339). `202` once it is on disk.
pub async fn enqueue(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = async {
        let store = store(&state)?;
        let body = read_body(&parts.headers, body).await?;
        MessagesSummary::parse(&body)?;
        let mut json: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::invalid_request(e.to_string()))?;
        let object = json
            .as_object_mut()
            .ok_or_else(|| ApiError::invalid_request("request body must be a JSON object"))?;
        let priority = match object.remove("priority") {
            None | Some(Value::Null) => 5,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|p| p <= 9) => {
                n.as_u64().unwrap_or(5) as u8
            }
            Some(other) => {
                return Err(ApiError::invalid_request(format!(
                    "priority: {other} is not a number from 0 (first) to 9 (last)"
                )))
            }
        };
        let not_before = parse_time("not_before", object.remove("not_before").as_ref())?;
        let deadline = parse_time("deadline", object.remove("deadline").as_ref())?;
        // A job's answer is stored whole: it never streams.
        object.remove("stream");
        let kept = pick(&parts.headers, &KEPT_HEADERS);
        let credentials = pick(&parts.headers, &CREDENTIAL_HEADERS);
        let id = store
            .enqueue(json, kept, credentials, priority, not_before, deadline)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "api_error",
                    format!("cannot store the job: {e}"),
                )
            })?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "queued"})),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Deserialize)]
pub struct WaitQuery {
    /// Seconds to wait for the job to end before answering (long poll), at most 120.
    wait: Option<u64>,
}

pub async fn get(
    State(state): State<ProxyState>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<Job>, ApiError> {
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(120));
    let job = store(&state)?
        .wait_for_end(&id, wait)
        .await
        .map_err(ApiError::bad_gateway)?
        .ok_or_else(|| ApiError::not_found(format!("no job {id:?}")))?;
    Ok(Json(job))
}

pub async fn cancel(
    State(state): State<ProxyState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match store(&state)?
        .cancel(&id)
        .await
        .map_err(ApiError::bad_gateway)?
    {
        None => Err(ApiError::not_found(format!("no job {id:?}"))),
        Some((JobStatus::Cancelled, true)) => Ok(Json(json!({"id": id, "status": "cancelled"}))),
        Some((status, _)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            format!("job {id} is already {}", status.name()),
        )),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<JobStatus>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<ProxyState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let jobs = store(&state)?
        .list(query.status, query.limit.unwrap_or(100).min(1000))
        .await
        .map_err(ApiError::bad_gateway)?;
    Ok(Json(json!({"jobs": jobs})))
}

/// Runs jobs until `shutdown`: `workers` at a time, each taking the next due job.
pub async fn run_workers(state: ProxyState, workers: usize, shutdown: CancellationToken) {
    let Some(store) = state.jobs.clone() else {
        return;
    };
    let tasks = (0..workers).map(|_| {
        let (state, store, shutdown) = (state.clone(), store.clone(), shutdown.clone());
        async move {
            loop {
                let wake = store.wake.clone();
                let notified = wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match store.claim(Utc::now()).await {
                    Ok(Some(job)) => {
                        tokio::select! {
                            _ = run_job(&state, &store, job) => {}
                            // Left `running`: the next start queues it again.
                            _ = shutdown.cancelled() => return,
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot read the job queue"),
                }
                let wait = match store.next_due().await {
                    Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                    _ => Duration::from_secs(60),
                }
                .clamp(Duration::from_millis(10), Duration::from_secs(60));
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    });
    futures_util::future::join_all(tasks).await;
}

async fn run_job(state: &ProxyState, store: &JobStore, job: Job) {
    let outcome = attempt(state, store, &job).await;
    let config = state.config();
    let finish = match outcome {
        Ok(response) => Finish::Done(response),
        Err((error, after)) => match retry_at(
            &config.queue.retry,
            config.queue.job_attempts,
            job.attempts,
            after,
            Utc::now(),
            jitter(),
        ) {
            Some(not_before) if job.deadline.is_none_or(|d| not_before < d) => {
                Finish::Retry { error, not_before }
            }
            _ => Finish::Failed(error),
        },
    };
    if let Err(error) = store.finish(&job.id, finish).await {
        tracing::warn!(job = %job.id, %error, "cannot record a job's result");
    }
}

/// One run of a job; the error carries a `retry-after` when the upstream gave one.
async fn attempt(
    state: &ProxyState,
    store: &JobStore,
    job: &Job,
) -> Result<Value, (String, Option<Duration>)> {
    if job.deadline.is_some_and(|d| d <= Utc::now()) {
        return Err(("its deadline passed before it could run".to_owned(), None));
    }
    // Jobs can wait: while the quota is critical, they do.
    if state.quota.snapshot().state == QuotaState::Critical {
        let until_deadline = job
            .deadline
            .and_then(|d| (d - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_secs(3600));
        state
            .queue
            .wait_for_quota(&state.quota, until_deadline)
            .await;
    }
    let mut headers = HeaderMap::new();
    for (name, value) in job.headers.iter().chain(store.credentials(&job.id).iter()) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    if let Ok(key) = HeaderValue::from_str(&job.id) {
        // Lets an upstream that supports it drop the duplicate of a run that was cut off.
        headers.insert("idempotency-key", key);
    }
    let body = Bytes::from(job.request.to_string());
    let ctx = prepare(
        state,
        body,
        headers,
        "/v1/messages".to_owned(),
        false,
        Some(Priority::Batch),
    )
    .map_err(|e| (e.message, None))?;
    let mut failures = ctx.new_failures();
    let mut end = ctx.run(0, &mut failures).await;
    let upstream = loop {
        match end {
            ChainEnd::Answered { upstream, .. } => break upstream,
            ChainEnd::Failed(error) => return Err((error.message, None)),
            ChainEnd::Hold { next } => {
                let released = state
                    .queue
                    .wait_for_quota(&state.quota, state.config().queue.max_wait)
                    .await;
                end = ctx.resume(next, released, &mut failures).await;
            }
        }
    };
    let status = upstream.status;
    let after = retry_after(&upstream.headers);
    let mut bytes = Vec::new();
    let mut body = upstream.body;
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.map_err(|e| (e.to_string(), None))?);
    }
    let answer: Value =
        serde_json::from_slice(&bytes).map_err(|_| ("the answer was not JSON".to_owned(), None))?;
    if status.is_success() {
        Ok(answer)
    } else {
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("failed")
            .to_owned();
        Err((format!("HTTP {}: {message}", status.as_u16()), after))
    }
}
