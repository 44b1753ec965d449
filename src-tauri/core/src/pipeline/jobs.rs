//! The async jobs worker: takes due jobs from the durable queue and runs each through the
//! same pipeline as a client's request, as `batch` priority. While the quota is critical
//! jobs wait for it (their deadline bounds the wait, and the whole run). A job's answer,
//! or why it failed, goes back to the store; transient failures are retried with backoff,
//! a refused credential (401/403) or a request the upstream rejects is not.

use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::prepare::{Origin, Prepared};
use crate::pipeline::Core;
use crate::queue::backoff::{jitter, retry_after, retry_at};
use crate::store::jobs::{Finish, Job, JobStore};
use crate::types::QuotaState;

/// How long a job without a deadline may wait for the quota in one run.
const JOB_QUOTA_WAIT: Duration = Duration::from_secs(3600);

/// Why a run of a job failed.
struct RunError {
    message: String,
    retry_after: Option<Duration>,
    /// Retrying cannot help (a refused key, a rejected request, a passed deadline).
    permanent: bool,
}

impl RunError {
    fn permanent(message: impl Into<String>) -> RunError {
        RunError {
            message: message.into(),
            retry_after: None,
            permanent: true,
        }
    }
}

/// Runs jobs until `shutdown`: `workers` at a time, each taking the next due job.
pub async fn run_workers(core: Core, workers: usize, shutdown: CancellationToken) {
    let Some(store) = core.jobs.clone() else {
        return;
    };
    let tasks = (0..workers).map(|_| {
        let (core, store, shutdown) = (core.clone(), store.clone(), shutdown.clone());
        async move {
            loop {
                let wake = store.wake.clone();
                let notified = wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let any_credential = core.config().queue.jobs_key.is_some();
                match store.claim(Utc::now(), any_credential).await {
                    Ok(Some(job)) => {
                        tokio::select! {
                            _ = run_isolated(&core, &store, job) => {}
                            // Left `running`: the next start queues it again.
                            _ = shutdown.cancelled() => return,
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(%error, "cannot read the job queue"),
                }
                let wait = match store.next_due(any_credential).await {
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

/// Runs one job in a task of its own, so that whatever happens to it — a bug that
/// panics included — the worker goes on with the next one, and the job is not left
/// `running` for ever. The task ends with the worker's `select!` on shutdown.
async fn run_isolated(core: &Core, store: &JobStore, job: Job) {
    let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
        let (core, store, job) = (core.clone(), store.clone(), job.clone());
        async move { run_job(&core, &store, job).await }
    }));
    if let Err(error) = task.await {
        if error.is_panic() {
            tracing::error!(job = %job.id, "running a job failed inside the proxy");
            let failed = Finish::Failed("the proxy failed while running this job".to_owned());
            if let Err(error) = store.finish(&job, failed).await {
                tracing::warn!(job = %job.id, %error, "cannot record a job's result");
            }
        }
    }
}

async fn run_job(core: &Core, store: &JobStore, job: Job) {
    let outcome = match job.deadline.map(until) {
        None => attempt(core, store, &job).await,
        Some(Some(left)) => match tokio::time::timeout(left, attempt(core, store, &job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(RunError::permanent("its deadline passed while it ran")),
        },
        Some(None) => Err(RunError::permanent(
            "its deadline passed before it could run",
        )),
    };
    let config = core.config();
    let finish = match outcome {
        Ok(response) => Finish::Done(response),
        Err(error) if error.permanent => Finish::Failed(error.message),
        Err(error) => match retry_at(
            &config.queue.retry,
            config.queue.job_attempts,
            job.attempts,
            error.retry_after,
            Utc::now(),
            jitter(),
        ) {
            Some(not_before) if job.deadline.is_none_or(|d| not_before < d) => Finish::Retry {
                error: error.message,
                not_before,
            },
            _ => Finish::Failed(error.message),
        },
    };
    if let Err(error) = store.finish(&job, finish).await {
        tracing::warn!(job = %job.id, %error, "cannot record a job's result");
    }
}

/// Time left before `deadline`; `None` once it passed.
fn until(deadline: DateTime<Utc>) -> Option<Duration> {
    (deadline - Utc::now())
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
}

/// One run of a job.
async fn attempt(core: &Core, store: &JobStore, job: &Job) -> Result<Value, RunError> {
    let max_wait = job.deadline.map_or(JOB_QUOTA_WAIT, |d| {
        until(d).unwrap_or_default().min(JOB_QUOTA_WAIT)
    });
    // Jobs can wait: while the quota is critical, they do.
    if core.quota.snapshot().state == QuotaState::Critical {
        core.queue.wait_for_quota(&core.quota, max_wait).await;
    }
    let prepared = Prepared::new(
        core,
        Bytes::from(job.request.to_string()),
        headers(core, store, job),
        "/v1/messages".to_owned(),
        false,
        Origin::Job { max_wait },
    )
    .map_err(|e| RunError::permanent(e.message))?;
    let answer = Arc::new(prepared).answer(None).await;
    let status = answer.status;
    let Some(body) = answer.full_body() else {
        return Err(RunError::permanent("the upstream streamed a job's answer"));
    };
    let parsed: Value = serde_json::from_slice(body).map_err(|_| RunError {
        message: format!("HTTP {}: the answer was not JSON", status.as_u16()),
        retry_after: None,
        permanent: false,
    })?;
    if status.is_success() {
        return Ok(parsed);
    }
    let message = parsed["error"]["message"].as_str().unwrap_or("failed");
    let code = status.as_u16();
    Err(RunError {
        message: format!("HTTP {code}: {message}"),
        retry_after: retry_after(&answer.headers),
        // A refused key or a rejected request stays refused: retrying only costs.
        permanent: status.is_client_error() && !matches!(code, 408 | 409 | 429),
    })
}

/// The job's kept headers, its client's credentials (or the key configured for jobs),
/// and an idempotency key.
fn headers(core: &Core, store: &JobStore, job: &Job) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            if crate::wire::headers::CREDENTIAL_HEADERS.contains(&name.as_str()) {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
    };
    for (name, value) in &job.headers {
        add(name, value);
    }
    match store.credentials(job) {
        Some(credentials) => {
            for (name, value) in &credentials {
                add(name, value);
            }
        }
        None => {
            if let Some(key) = &core.config().queue.jobs_key {
                add("x-api-key", key.expose_secret());
            }
        }
    }
    // Lets an upstream that supports it drop the duplicate of a run that was cut off.
    add("idempotency-key", &job.id);
    headers
}
