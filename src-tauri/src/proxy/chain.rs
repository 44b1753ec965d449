//! Walks a decision's chain of targets until one answers: gates (per-provider concurrency
//! by priority), health and breakers, failover on connect errors, timeouts, 429, 529 and
//! 5xx before any byte reached the client, retries with backoff on the last target, and
//! the `queue` target that holds a request while the quota is critical.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::Utc;
use futures_util::StreamExt;

use super::error::ApiError;
use super::ProxyState;
use crate::classify::Classification;
use crate::config::Credentials;
use crate::providers::{AnyProvider, MessagesRequest, Provider, Upstream};
use crate::queue::backoff::{self, jitter};
use crate::queue::Released;
use crate::queue::{Permit, Priority};
use crate::quota::QuotaState;
use crate::router::{self, Decision, Mode, Needs, Situation};

/// Everything one request needs to be sent anywhere, owned so that a held stream can run
/// the chain after the handler has returned.
pub struct ChainCtx {
    pub state: ProxyState,
    pub decision: Decision,
    /// Kept to route again when a held request is released.
    pub classification: Classification,
    pub requested_model: Option<String>,
    pub body: Bytes,
    pub json: serde_json::Value,
    pub headers: HeaderMap,
    pub path_and_query: String,
    pub input_tokens: u64,
    pub needs: Needs,
    pub stream: bool,
    pub is_count: bool,
    pub mode: Mode,
    pub priority: Priority,
    pub ticket: u64,
}

/// How a walk along the chain ended.
pub enum ChainEnd {
    Answered {
        upstream: Upstream,
        target: String,
    },
    /// A `queue` target while the quota is critical: wait, then go on from `next`.
    Hold {
        next: usize,
    },
    Failed(ApiError),
}

impl ChainCtx {
    pub fn new_failures(&self) -> Vec<String> {
        self.decision
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.target, s.why))
            .collect()
    }

    /// Tries the request's chain from `from` on.
    pub async fn run(&self, from: usize, failures: &mut Vec<String>) -> ChainEnd {
        self.walk(&self.decision, from, failures).await
    }

    /// After a hold: the quota recovered, so the request is routed again for the state it
    /// is in now (a complex request goes back to Claude); if the wait timed out, the chain
    /// goes on past the queue target.
    pub async fn resume(
        &self,
        next: usize,
        released: Released,
        failures: &mut Vec<String>,
    ) -> ChainEnd {
        if released == Released::TimedOut {
            let waited = self.state.config().queue.max_wait.as_secs();
            failures.push(format!("queue: the quota stayed critical for {waited}s"));
            let rest = self.decision.chain.get(next..).unwrap_or_default();
            if rest.iter().all(|c| c.is_queue()) {
                return ChainEnd::Failed(ApiError::new(
                    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    "overloaded_error",
                    format!("the Claude quota stayed critical for {waited}s and nothing else may take this request; try again later"),
                ));
            }
            return self.walk(&self.decision, next, failures).await;
        }
        let config = self.state.config();
        let quota = self.state.quota.snapshot();
        let fresh = router::plan(
            &config,
            Situation {
                mode: self.mode,
                quota: &quota,
                health: &self.state.health,
                outcomes: &self.state.outcomes,
            },
            &self.classification,
            self.requested_model.as_deref(),
            self.needs,
        );
        tracing::info!(reason = %fresh.reason, "released from the queue; routed again");
        self.walk(&fresh, 0, failures).await
    }

    async fn walk(&self, decision: &Decision, from: usize, failures: &mut Vec<String>) -> ChainEnd {
        let state = &self.state;
        let providers = state.providers.load_full();
        let chain = &decision.chain;
        let mut last_answer: Option<(Upstream, String)> = None;
        let mut last_error: Option<ApiError> = None;
        for (index, candidate) in chain.iter().enumerate().skip(from) {
            let Some(name) = &candidate.provider else {
                if state.quota.snapshot().state == QuotaState::Critical {
                    return ChainEnd::Hold { next: index + 1 };
                }
                continue;
            };
            let Some(provider) = providers.get(name) else {
                continue;
            };
            if let Err(why) = state.health.admit(name) {
                failures.push(format!("{}: {why}", candidate.target));
                continue;
            }
            let is_last = index + 1 == chain.len();
            let attempts = if is_last && !self.is_count {
                state.config().queue.retry.attempts
            } else {
                1
            };
            for attempt in 1..=attempts {
                match self.attempt_model(provider, &candidate.model).await {
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
                        } else {
                            // The request does not fit this target: retrying cannot help.
                            failures.push(format!("{}: {error}", candidate.target));
                            last_error = Some(error.to_api_error());
                            break;
                        }
                        failures.push(format!("{}: {error}", candidate.target));
                        last_error = Some(error.to_api_error());
                        if attempt < attempts {
                            self.pause_before_retry(attempt, None).await;
                        }
                    }
                    Ok((upstream, started)) => {
                        if !fails_over(provider, &upstream) {
                            state.health.mark_healthy(name);
                            let latency = started.elapsed().as_secs_f64() * 1000.0;
                            state.outcomes.success(decision.complexity, name, latency);
                            return ChainEnd::Answered {
                                upstream,
                                target: candidate.target.clone(),
                            };
                        }
                        let status = upstream.status.as_u16();
                        state.outcomes.failure(
                            decision.complexity,
                            name,
                            format!("HTTP {status}"),
                            Utc::now(),
                        );
                        if upstream.status != StatusCode::TOO_MANY_REQUESTS {
                            state
                                .health
                                .mark_unhealthy(name, format!("answered HTTP {status}"));
                        }
                        failures.push(format!("{}: answered HTTP {status}", candidate.target));
                        let retry_after = backoff::retry_after(&upstream.headers);
                        last_answer = Some((upstream, candidate.target.clone()));
                        let cap = state.config().queue.retry.cap;
                        if retry_after.is_some_and(|after| after > cap) {
                            // A long wait is the client's to decide: give it the answer now.
                            break;
                        }
                        if attempt < attempts {
                            self.pause_before_retry(attempt, retry_after).await;
                        }
                    }
                }
            }
        }
        if let Some((upstream, target)) = last_answer {
            // Nothing else answered: the client gets the last real answer (a 429 with its
            // retry-after, say) rather than a made-up one.
            return ChainEnd::Answered { upstream, target };
        }
        ChainEnd::Failed(match (last_error, chain.is_empty()) {
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
        })
    }

    async fn pause_before_retry(&self, attempt: u32, retry_after: Option<Duration>) {
        let backoff = self.state.config().queue.retry;
        let delay = backoff.delay(attempt, retry_after, jitter());
        // Waiting longer than a client would is pointless: give the answer instead.
        let delay = delay.min(self.state.config().queue.max_wait);
        tracing::info!(
            attempt,
            delay_ms = delay.as_millis() as u64,
            "retrying after backoff"
        );
        tokio::time::sleep(delay).await;
    }

    /// One attempt; if Anthropic does not know the model a tier alias put in place of the
    /// client's (`404`), the client's own model is tried once, so a stale tier id in the
    /// config never breaks Claude Code.
    async fn attempt_model(
        &self,
        provider: &AnyProvider,
        model: &str,
    ) -> Result<(Upstream, Instant), crate::providers::ProviderError> {
        let answer = self.attempt(provider, model).await?;
        let requested = self.requested_model.as_deref().unwrap_or(model);
        let is_claude = provider.config().credentials == Credentials::PassThrough;
        if is_claude && answer.0.status == StatusCode::NOT_FOUND && requested != model {
            tracing::warn!(
                tier_model = model,
                requested,
                "Anthropic does not know the tier's model; check [providers] tiers — using the model the client asked for"
            );
            drop(answer);
            return self.attempt(provider, requested).await;
        }
        Ok(answer)
    }

    /// One attempt on one provider, through its concurrency gate.
    async fn attempt(
        &self,
        provider: &AnyProvider,
        model: &str,
    ) -> Result<(Upstream, Instant), crate::providers::ProviderError> {
        let state = &self.state;
        let config = provider.config();
        let permit = if self.is_count {
            None
        } else {
            let gate = state.queue.gate(&config.name, config.max_concurrent);
            Some(gate.acquire(self.priority, self.ticket).await)
        };
        let is_claude = config.credentials == Credentials::PassThrough;
        let fixed = (is_claude && self.mode != Mode::Paused)
            .then(|| router::unsigned_thinking_fix(&self.json))
            .flatten();
        let fixed_bytes = fixed.as_ref().map(|f| Bytes::from(f.to_string()));
        let request = MessagesRequest {
            body: fixed_bytes.as_ref().unwrap_or(&self.body),
            json: fixed.as_ref().unwrap_or(&self.json),
            model,
            stream: self.stream,
            path_and_query: &self.path_and_query,
            client_headers: &self.headers,
            input_tokens: self.input_tokens,
        };
        let started = Instant::now();
        let mut upstream = if self.is_count {
            provider.count_tokens(&state.http, &request).await?
        } else {
            provider.messages(&state.http, &request).await?
        };
        if is_claude {
            // Anthropic's own answer: its rate-limit headers and 429s are the quota.
            state
                .quota
                .observe_response(upstream.status, &upstream.headers);
        }
        if let Some(permit) = permit {
            upstream.body = hold_permit(upstream.body, permit);
        }
        Ok((upstream, started))
    }
}

/// Keeps the concurrency slot until the body has been sent (or dropped).
fn hold_permit(body: crate::providers::BodyStream, permit: Permit) -> crate::providers::BodyStream {
    Box::pin(body.map(move |chunk| {
        let _slot = &permit;
        chunk
    }))
}

/// Whether to try the next target after this answer.
fn fails_over(provider: &AnyProvider, upstream: &Upstream) -> bool {
    let own_key_refused = provider.config().credentials != Credentials::PassThrough
        && matches!(upstream.status.as_u16(), 401 | 403);
    upstream.should_fail_over() || own_key_refused
}
