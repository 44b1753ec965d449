//! The one loop: walk a decision's chain of targets until one answers. Each target is let
//! through by its breaker and its concurrency gate (by priority); connect errors,
//! timeouts, 429, 529, 5xx and answers that turn out not to be answers (a stream whose
//! first event is an overload error, a body that is not JSON, a stall) fail over to the
//! next target, as long as nothing reached the client. The last target is retried with
//! backoff. A `queue` target holds the request while the quota is critical.

use std::time::{Duration, Instant};

use chrono::Utc;
use http::{HeaderValue, StatusCode};

use super::commit::{commit, Committed};
use super::prepare::{Origin, Prepared};
use super::sessions::{SessionRoute, Sessions};
use super::{Answer, AnswerBody};
use crate::providers::{AnyProvider, MessagesRequest, Provider, ProviderError, Upstream};
use crate::queue::backoff::{self, jitter};
use crate::queue::{Permit, Priority, Released};
use crate::router::{self, Decision, Mode, Situation};
use crate::types::QuotaState;
use crate::wire::ApiError;

/// What a `queue` target does with this request now.
enum Hold {
    /// The quota is not critical: nothing to wait for.
    NotNeeded,
    Wait,
    /// Waiting would be for nothing: the next target, at once, for this reason.
    PassOn(String),
}

/// How a walk along the chain ended.
enum Walked {
    Answered(Answer),
    /// A `queue` target while the quota is critical: wait, then go on from `next`.
    Hold {
        next: usize,
    },
    Failed(ApiError),
}

/// One try of one target.
enum Tried {
    Answered(Answer),
    /// An answer worth trying another target for (kept: if nothing else answers, the
    /// client gets it rather than a made-up error).
    FailOver {
        answer: Answer,
        why: String,
        retry_after: Option<Duration>,
        counts_against_health: bool,
    },
    /// The provider failed (unreachable, timeout, broken answer).
    Failed(ProviderError),
    /// The request does not fit this target: retrying cannot help.
    Unfit(ProviderError),
}

impl Prepared {
    /// Walks the chain until a target answers or every one failed, holding for the
    /// quota where a `queue` target says so (telling `held` when the wait begins).
    pub async fn answer(&self, held: Option<tokio::sync::oneshot::Sender<()>>) -> Answer {
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = held;
        let mut failures = self.new_failures();
        let mut walked = self.walk(&self.decision, 0, &mut failures).await;
        loop {
            match walked {
                Walked::Answered(answer) => return answer,
                Walked::Failed(error) => return self.failed(&error),
                Walked::Hold { next } => {
                    self.begin_waiting();
                    let core = &self.core;
                    let released = core
                        .queue
                        .wait_for_quota(&core.quota, self.max_wait())
                        .await;
                    walked = self.resume(next, released, &mut failures).await;
                }
            }
        }
    }

    /// The request begins to wait: a stream gets its headers and pings from now on.
    fn begin_waiting(&self) {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(waiting) = waiting {
            let _ = waiting.send(());
        }
    }

    /// LM Studio with `load_context`: loads the model first when this request needs it
    /// (not loaded, or with too small a context), waiting for a load already under way.
    async fn load_if_needed(&self, provider: &AnyProvider) -> Result<(), ProviderError> {
        let Some(loader) = provider.loader() else {
            return Ok(());
        };
        let core = &self.core;
        if self.is_count || !loader.must_load(provider.config(), &core.health, self.input_tokens) {
            return Ok(());
        }
        self.begin_waiting();
        provider
            .ensure_loaded(&core.http, &core.health, self.input_tokens)
            .await
    }

    fn new_failures(&self) -> Vec<String> {
        self.decision
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.target, s.why))
            .collect()
    }

    /// The answer when every target failed: the error, with the routing headers, and
    /// for a 529 the time the quota is expected back.
    fn failed(&self, error: &ApiError) -> Answer {
        let mut answer = Answer::error(error);
        self.add_route_headers(&mut answer, None);
        if error.status.as_u16() == 529 {
            if let Ok(value) = HeaderValue::from_str(&self.quota_retry_after().to_string()) {
                answer.headers.insert("retry-after", value);
            }
        }
        answer
    }

    /// Seconds until the quota is expected back: a 429's reset, else the window's reset.
    fn quota_retry_after(&self) -> i64 {
        let snapshot = self.core.quota.snapshot();
        snapshot
            .rate_limited_until
            .or(snapshot.resets_at)
            .map(|t| (t - Utc::now()).num_seconds().max(1))
            .unwrap_or(60)
    }

    /// `x-pai-complexity`, `x-pai-quota-state`, and `x-pai-route` when a target answered.
    pub(super) fn add_route_headers(&self, answer: &mut Answer, target: Option<&str>) {
        let headers = &mut answer.headers;
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set("x-pai-complexity", self.decision.complexity.name());
        set("x-pai-quota-state", self.decision.quota_state.name());
        if let Some(target) = target {
            set("x-pai-route", target);
        }
    }

    /// Whether to hold at a `queue` target. A client waits only when the critical state is
    /// expected to clear within `max_wait_secs` (a 429's reset, or the binding window's);
    /// a reset hours away, or unknown, sends it to the next target at once. A job waits
    /// anyway — its deadline bounds it.
    fn hold_here(&self) -> Hold {
        let quota = self.core.quota.snapshot();
        if quota.state != QuotaState::Critical {
            return Hold::NotNeeded;
        }
        if matches!(self.origin, Origin::Job { .. }) {
            return Hold::Wait;
        }
        let max_wait = self.max_wait();
        let clears = quota.critical_until();
        let within = clears.is_some_and(|at| {
            (at - Utc::now())
                .to_std()
                .map_or(true, |left| left <= max_wait)
        });
        if within {
            return Hold::Wait;
        }
        Hold::PassOn(match clears {
            Some(at) => format!(
                "the quota stays critical until {}, beyond max_wait_secs ({}s): not waiting",
                crate::quota::tracker::clock(at),
                max_wait.as_secs()
            ),
            None => "the quota is critical with no known reset: not waiting".to_owned(),
        })
    }

    /// After a hold: the quota recovered, so the request is routed again for the state it
    /// is in now (a complex request goes back to Claude); if the wait timed out, the chain
    /// goes on past the queue target.
    async fn resume(&self, next: usize, released: Released, failures: &mut Vec<String>) -> Walked {
        if released == Released::TimedOut {
            let waited = self.max_wait().as_secs();
            failures.push(format!("queue: the quota stayed critical for {waited}s"));
            let rest = self.decision.chain.get(next..).unwrap_or_default();
            if rest.iter().all(|c| c.is_queue()) {
                return Walked::Failed(ApiError::overloaded(format!(
                    "the Claude quota stayed critical for {waited}s and nothing else may take this request; try again later"
                )));
            }
            return self.walk(&self.decision, next, failures).await;
        }
        let config = self.core.config();
        let quota = self.core.quota.snapshot();
        let fresh = router::plan(
            &config,
            Situation {
                mode: self.mode,
                quota: &quota,
                health: &self.core.health,
                outcomes: &self.core.outcomes,
            },
            &self.classification,
            self.requested_model.as_deref(),
            self.needs,
        );
        tracing::info!(reason = %fresh.reason, "released from the queue; routed again");
        self.walk(&fresh, 0, failures).await
    }

    async fn walk(&self, decision: &Decision, from: usize, failures: &mut Vec<String>) -> Walked {
        let core = &self.core;
        let providers = core.providers.load_full();
        let chain = &decision.chain;
        let mut last_answer: Option<Answer> = None;
        let mut last_error: Option<ApiError> = None;
        let mut passed_on: Option<String> = None;
        for (index, candidate) in chain.iter().enumerate().skip(from) {
            let Some(name) = &candidate.provider else {
                match self.hold_here() {
                    Hold::Wait => return Walked::Hold { next: index + 1 },
                    Hold::PassOn(why) => {
                        failures.push(format!("queue: {why}"));
                        passed_on = Some(why);
                    }
                    Hold::NotNeeded => {}
                }
                continue;
            };
            let Some(provider) = providers.get(name) else {
                continue;
            };
            if let Err(error) = self.load_if_needed(provider).await {
                tracing::warn!(target = %candidate.target, %error, "the model could not be loaded");
                failures.push(format!("{}: {error}", candidate.target));
                last_error = Some(error.to_api_error());
                continue;
            }
            let is_last = index + 1 == chain.len();
            let attempts = if is_last && !self.is_count {
                core.config().queue.retry.attempts
            } else {
                1
            };
            for attempt in 1..=attempts {
                let admission = match core.health.admit(name) {
                    Ok(admission) => admission,
                    Err(why) => {
                        failures.push(format!("{}: {why}", candidate.target));
                        break;
                    }
                };
                let started = Instant::now();
                match self.try_target(provider, &candidate.model).await {
                    Tried::Answered(mut answer) => {
                        admission.succeeded();
                        let latency = started.elapsed().as_secs_f64() * 1000.0;
                        core.outcomes.success(decision.complexity, name, latency);
                        if self.priority != Priority::Batch {
                            core.last_route.send_replace(Some(format!(
                                "{} ({})",
                                candidate.target,
                                decision.complexity.name()
                            )));
                        }
                        if let Some(session) =
                            Sessions::id(&self.headers).filter(|_| !self.is_count)
                        {
                            core.sessions.record(
                                session,
                                SessionRoute {
                                    target: candidate.target.clone(),
                                    complexity: decision.complexity.name().to_owned(),
                                    quota_state: decision.quota_state.name().to_owned(),
                                    passed_over: failures.clone(),
                                    at: Utc::now(),
                                },
                            );
                        }
                        answer.target = Some(candidate.target.clone());
                        self.add_route_headers(&mut answer, Some(&candidate.target));
                        add_skipped_header(&mut answer, failures);
                        return Walked::Answered(answer);
                    }
                    Tried::Unfit(error) => {
                        drop(admission);
                        failures.push(format!("{}: {error}", candidate.target));
                        last_error = Some(error.to_api_error());
                        break;
                    }
                    Tried::Failed(error) => {
                        tracing::warn!(target = %candidate.target, %error, "target failed");
                        admission.failed(error.to_string());
                        core.outcomes.failure(
                            decision.complexity,
                            name,
                            error.to_string(),
                            Utc::now(),
                        );
                        failures.push(format!("{}: {error}", candidate.target));
                        last_error = Some(error.to_api_error());
                        if attempt < attempts {
                            self.pause_before_retry(attempt, None).await;
                        }
                    }
                    Tried::FailOver {
                        mut answer,
                        why,
                        retry_after,
                        counts_against_health,
                    } => {
                        if counts_against_health {
                            admission.failed(why.clone());
                        } else {
                            drop(admission);
                        }
                        core.outcomes
                            .failure(decision.complexity, name, why.clone(), Utc::now());
                        failures.push(format!("{}: {why}", candidate.target));
                        answer.target = Some(candidate.target.clone());
                        self.add_route_headers(&mut answer, Some(&candidate.target));
                        last_answer = Some(answer);
                        let cap = core.config().queue.retry.cap;
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
        if let Some(answer) = last_answer {
            // Nothing else answered: the client gets the last real answer (a 429 with its
            // retry-after, say) rather than a made-up one.
            return Walked::Answered(answer);
        }
        if let (None, Some(why)) = (&last_error, passed_on) {
            // Only the quota was in the way: come back when it is expected back.
            return Walked::Failed(ApiError::overloaded(format!(
                "{why}, and nothing else may take this request; try again later"
            )));
        }
        Walked::Failed(match (last_error, chain.is_empty()) {
            (Some(error), _) if failures.len() <= 1 => error,
            (_, true) if failures.is_empty() => {
                ApiError::unavailable("no target is configured for this request")
            }
            _ => ApiError::bad_gateway(format!("every target failed: {}", failures.join("; "))),
        })
    }

    async fn pause_before_retry(&self, attempt: u32, retry_after: Option<Duration>) {
        let config = self.core.config();
        let delay = config.queue.retry.delay(attempt, retry_after, jitter());
        // Waiting longer than a client would is pointless: give the answer instead.
        let delay = delay.min(config.queue.max_wait);
        tracing::info!(
            attempt,
            delay_ms = delay.as_millis() as u64,
            "retrying after backoff"
        );
        tokio::time::sleep(delay).await;
    }

    /// Sends to one target and commits what it answers (or says why not).
    async fn try_target(&self, provider: &AnyProvider, model: &str) -> Tried {
        let (upstream, permit) = match self.attempt_model(provider, model).await {
            Ok(sent) => sent,
            Err(error) if error.is_provider_fault() => return Tried::Failed(error),
            Err(error) => return Tried::Unfit(error),
        };
        let status = upstream.status;
        let retry_after = backoff::retry_after(&upstream.headers);
        let own_key_refused =
            !provider.config().is_claude() && matches!(status.as_u16(), 401 | 403);
        let fails_over = upstream.should_fail_over() || own_key_refused;
        let config = provider.config();
        match commit(upstream, permit, config, self.stream, fails_over).await {
            Committed::Answer(answer) if fails_over => Tried::FailOver {
                answer,
                why: format!("answered HTTP {}", status.as_u16()),
                retry_after,
                counts_against_health: status != StatusCode::TOO_MANY_REQUESTS,
            },
            Committed::Answer(answer) => Tried::Answered(answer),
            Committed::ErrorEvent { answer, kind } => Tried::FailOver {
                answer,
                why: format!("its stream began with an {kind} event"),
                retry_after,
                counts_against_health: kind != "rate_limit_error",
            },
            Committed::Broken(reason) => Tried::Failed(ProviderError::Failed {
                provider: config.name.clone(),
                reason,
            }),
            Committed::Stalled(after) => Tried::Failed(ProviderError::Stalled {
                provider: config.name.clone(),
                after,
            }),
        }
    }

    /// One attempt; if Anthropic does not know the model a tier alias put in place of the
    /// client's (`404`), the client's own model is tried once, so a stale tier id in the
    /// config never breaks Claude Code.
    async fn attempt_model(
        &self,
        provider: &AnyProvider,
        model: &str,
    ) -> Result<(Upstream, Option<Permit>), ProviderError> {
        let answer = self.attempt(provider, model).await?;
        let requested = self.requested_model.as_deref().unwrap_or(model);
        if provider.config().is_claude()
            && answer.0.status == StatusCode::NOT_FOUND
            && requested != model
        {
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

    /// One attempt on one provider, through its concurrency gate; the slot is returned
    /// with the answer and kept until its body has been sent.
    async fn attempt(
        &self,
        provider: &AnyProvider,
        model: &str,
    ) -> Result<(Upstream, Option<Permit>), ProviderError> {
        let core = &self.core;
        let config = provider.config();
        let permit = if self.is_count {
            None
        } else {
            let gate = core.queue.gate(&config.name, config.max_concurrent);
            Some(gate.acquire(self.priority, self.ticket).await)
        };
        let fixed = (config.is_claude() && self.mode != Mode::Paused)
            .then(|| router::unsigned_thinking_fix(&self.body))
            .flatten();
        let request = MessagesRequest {
            body: fixed.as_ref().unwrap_or(&self.body),
            model,
            stream: self.stream,
            path_and_query: &self.path_and_query,
            client_headers: &self.headers,
            input_tokens: self.input_tokens,
        };
        let upstream = if self.is_count {
            provider.count_tokens(&core.http, &request).await?
        } else {
            provider.messages(&core.http, &request).await?
        };
        if config.is_claude() {
            // Anthropic's own answer: its rate-limit headers and 429s are the quota.
            core.quota
                .observe_response(upstream.status, &upstream.headers, Some(model));
        }
        Ok((upstream, permit))
    }
}

/// `x-pai-skipped`: the targets passed over before the one that answered, and why.
fn add_skipped_header(answer: &mut Answer, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let text: String = failures
        .join("; ")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&text) {
        answer.headers.insert("x-pai-skipped", value);
    }
}

impl AnswerBody {
    /// Whether this is a stream the client receives as events.
    pub fn is_events(&self) -> bool {
        matches!(self, AnswerBody::Events(_))
    }
}
