//! `/v1/queue/*`: async jobs over HTTP. The worker that runs them is the core's
//! ([`pai_core::pipeline::jobs`]).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::read_body;
use super::rejection::{error_response, HttpError, Json, Path, Query};
use super::ProxyState;
use pai_core::store::jobs::{Job, JobStatus, JobStore, Seen};
use pai_core::wire::headers::{credentials_of, pick};
use pai_core::wire::summary::MessagesSummary;
use pai_core::wire::ApiError;

/// Headers a job keeps (never credentials, which stay in memory).
const KEPT_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

fn store(state: &ProxyState) -> Result<&JobStore, ApiError> {
    state.core.jobs.as_ref().ok_or_else(|| {
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
            .map(|t| Some(pai_core::bounded::time(t.with_timezone(&Utc), Utc::now())))
            .map_err(|_| {
                ApiError::invalid_request(format!("{field}: {text:?} is not an RFC 3339 time"))
            }),
        Some(other) => Err(ApiError::invalid_request(format!(
            "{field}: {other} is not an RFC 3339 time"
        ))),
    }
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
        let credentials = credentials_of(&parts.headers);
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
        Err(error) => error_response(error),
    }
}

#[derive(Deserialize)]
pub struct WaitQuery {
    /// Seconds to wait for the job to end before answering (long poll), at most 120.
    wait: Option<u64>,
}

/// Whose jobs this request may see: its credential's, or all with the admin token.
fn seen(state: &ProxyState, store: &JobStore, headers: &axum::http::HeaderMap) -> Seen {
    let admin = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| crate::admin::token::matches(&state.admin_token, given.trim()));
    if admin {
        return Seen::All;
    }
    Seen::Of(store.owner(&credentials_of(headers)))
}

/// A job this request may see; another's is as absent as one that never was.
async fn own_job(
    state: &ProxyState,
    headers: &axum::http::HeaderMap,
    id: &str,
    wait: Duration,
) -> Result<Job, HttpError> {
    let store = store(state)?;
    let seen = seen(state, store, headers);
    let missing = || ApiError::not_found(format!("no job {id:?}"));
    let job = store
        .get(id)
        .await
        .map_err(ApiError::bad_gateway)?
        .filter(|job| seen.sees(job))
        .ok_or_else(missing)?;
    if wait.is_zero() {
        return Ok(job);
    }
    Ok(store
        .wait_for_end(id, wait)
        .await
        .map_err(ApiError::bad_gateway)?
        .unwrap_or(job))
}

pub async fn get(
    State(state): State<ProxyState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Json<Job>, HttpError> {
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(120));
    Ok(Json(own_job(&state, &headers, &id, wait).await?))
}

pub async fn cancel(
    State(state): State<ProxyState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, HttpError> {
    own_job(&state, &headers, &id, Duration::ZERO).await?;
    match store(&state)?
        .cancel(&id)
        .await
        .map_err(ApiError::bad_gateway)?
    {
        None => Err(ApiError::not_found(format!("no job {id:?}")).into()),
        Some((JobStatus::Cancelled, true)) => Ok(Json(json!({"id": id, "status": "cancelled"}))),
        Some((status, _)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            format!("job {id} is already {}", status.name()),
        )
        .into()),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<JobStatus>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<ProxyState>,
    headers: axum::http::HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, HttpError> {
    let store = store(&state)?;
    let seen = seen(&state, store, &headers);
    let jobs = store
        .list(query.status, query.limit.unwrap_or(100).min(1000), seen)
        .await
        .map_err(ApiError::bad_gateway)?;
    Ok(Json(json!({"jobs": jobs})))
}
