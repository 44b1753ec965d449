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
use crate::providers::{
    AnyProvider, BodyStream, MessagesRequest, Outgoing, Provider, ProviderError, Reading, Upstream,
};
use crate::queue::backoff::{self, jitter};
use crate::queue::{Permit, Priority, Released};
use crate::router::{self, Candidate, Decision, Flaw, Issuer, Mode, Situation};
use crate::types::QuotaState;
use crate::wire::trace;
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
    /// An answer showed the quota worse than the plan assumed: plan again, keeping the
    /// answer that showed it in case nothing else answers.
    Replan {
        fallback: Option<Box<Answer>>,
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

/// A target passed over on the way to an answer, and why.
#[derive(Debug, Clone)]
struct PassedOver {
    target: String,
    why: String,
    /// `Some(position)`: left out by the router at that place in the current plan (it
    /// comes before the answer only if its place does); `None`: tried, or left out by an
    /// earlier plan — before the answer either way.
    planned_at: Option<usize>,
    kind: Passed,
    /// Where it stands among the targets named: the plan it belongs to, then its place.
    order: (usize, usize),
}

/// What kind of reason a target was passed over for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Passed {
    /// A later try could go otherwise (a timeout, a 5xx, an open circuit).
    Transient,
    /// It stays so for a while (no key, a server that is down, a request too large).
    Lasting,
    /// The quota is in the way: Anthropic's 429 holds every Claude model until its
    /// reset, or a `queue` target will not wait that long.
    Quota,
}

/// Every target passed over so far in this request, in the order the walk met them.
#[derive(Default)]
struct Trail {
    passed: Vec<PassedOver>,
    /// Plans made so far for this request (a replan or a release from the queue).
    plans: usize,
    /// Providers and models already sent the request (`claude/claude-opus-5-5`): a new
    /// plan does not send it there again.
    tried: Vec<String>,
}

impl Trail {
    /// What the router left out of `decision`; earlier entries stay, as "before".
    fn plan(&mut self, decision: &Decision) {
        for entry in &mut self.passed {
            entry.planned_at = None;
        }
        self.plans += 1;
        let plan = self.plans;
        self.passed
            .extend(decision.skipped.iter().map(|s| PassedOver {
                target: s.target.clone(),
                kind: if s.why.starts_with("circuit open") {
                    Passed::Transient
                } else if s.why.starts_with(router::RATE_LIMITED) {
                    Passed::Quota
                } else {
                    Passed::Lasting
                },
                why: s.why.clone(),
                planned_at: Some(s.position),
                order: (plan, s.position),
            }));
    }

    /// `target`, at `position` of the current plan, failed or was passed on.
    fn failed(&mut self, target: &str, position: usize, why: impl Into<String>, kind: Passed) {
        self.passed.push(PassedOver {
            target: target.to_owned(),
            why: why.into(),
            planned_at: None,
            kind,
            order: (self.plans, position),
        });
    }

    /// Those passed over before the target at `position` answered.
    fn before(&self, position: usize) -> Vec<String> {
        self.passed
            .iter()
            .filter(|p| p.planned_at.is_none_or(|at| at < position))
            .map(|p| format!("{}: {}", p.target, p.why))
            .collect()
    }

    /// Each target once, with its first reason and how many tries it had: for the
    /// error when nothing answered.
    fn summary(&self) -> String {
        let mut in_order: Vec<&PassedOver> = self.passed.iter().collect();
        in_order.sort_by_key(|p| p.order);
        let mut seen: Vec<(&str, &str, usize)> = Vec::new();
        for entry in in_order {
            match seen.iter_mut().find(|(target, ..)| *target == entry.target) {
                Some((_, _, count)) => *count += 1,
                None => seen.push((&entry.target, &entry.why, 1)),
            }
        }
        seen.iter()
            .map(|(target, why, count)| match count {
                1 => format!("{target}: {why}"),
                n => format!("{target}: {why} ({n} tries)"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether trying again soon could bring another answer.
    fn any_transient(&self) -> bool {
        self.passed.iter().any(|p| p.kind == Passed::Transient)
    }

    /// Whether the quota is all that was in the way.
    fn only_quota(&self) -> bool {
        !self.passed.is_empty() && self.passed.iter().all(|p| p.kind == Passed::Quota)
    }
}

impl Prepared {
    /// Walks the chain until a target answers or every one failed, holding for the
    /// quota where a `queue` target says so (telling `held` when the wait begins). When
    /// an answer reveals that the quota is worse than the plan assumed (the first 429
    /// of a session, say), the request is planned again for the state it revealed.
    pub async fn answer(&self, held: Option<tokio::sync::oneshot::Sender<()>>) -> Answer {
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = held;
        let mut trail = Trail::default();
        trail.plan(&self.decision);
        let mut walked = self.walk(&self.decision, 0, &mut trail).await;
        loop {
            match walked {
                Walked::Answered(answer) => return answer,
                Walked::Failed(error) => return self.failed(&error, &trail),
                Walked::Hold { next } => {
                    self.begin_waiting();
                    let core = &self.core;
                    let released = core
                        .queue
                        .wait_for_quota(&core.quota, self.max_wait())
                        .await;
                    walked = self.resume(next, released, &mut trail).await;
                }
                Walked::Replan { fallback } => {
                    let fresh = self.plan_now();
                    tracing::info!(reason = %fresh.reason, "the quota turned out worse than planned; routed again");
                    trail.plan(&fresh);
                    // Nothing else answered: the client gets the answer that revealed it.
                    walked = match (self.walk(&fresh, 0, &mut trail).await, fallback) {
                        (Walked::Failed(_), Some(answer)) => Walked::Answered(*answer),
                        (other, _) => other,
                    };
                }
            }
        }
    }

    /// The plan for the state things are in now.
    fn plan_now(&self) -> Decision {
        let config = self.core.config();
        let quota = self.core.quota.snapshot();
        router::plan(
            &config,
            Situation {
                mode: self.mode,
                quota: &quota,
                health: &self.core.health,
                outcomes: &self.core.outcomes,
                models: &self.core.models,
                continues_on: self.continues_on.as_ref(),
            },
            &self.classification,
            self.requested_model.as_deref(),
            self.needs,
        )
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
        if self.is_count || !loader.must_load(provider.config(), &core.health) {
            return Ok(());
        }
        let (loading, begun) = tokio::sync::oneshot::channel();
        let ensure = provider.ensure_loaded(&core.http, &core.health, self.input_tokens, loading);
        tokio::pin!(ensure);
        tokio::select! {
            done = &mut ensure => return done,
            Ok(()) = begun => self.begin_waiting(),
        }
        ensure.await
    }

    /// The answer when every target failed: the error, with the routing headers; for a
    /// 529 the time the quota is expected back; and, when nothing that failed could go
    /// otherwise soon (no key, a model server that is down, a request too large),
    /// `x-should-retry: false`, so Claude Code shows it at once instead of retrying it
    /// for minutes.
    fn failed(&self, error: &ApiError, trail: &Trail) -> Answer {
        let mut answer = Answer::error(error);
        self.add_route_headers(&mut answer, None);
        if !matches!(error.status.as_u16(), 429 | 529) && !trail.any_transient() {
            answer
                .headers
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if matches!(error.status.as_u16(), 429 | 529) {
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
        self.add_headers_of(&self.decision, answer, target);
    }

    /// The same for the plan that answered (a request planned again says its new state).
    fn add_headers_of(&self, decision: &Decision, answer: &mut Answer, target: Option<&str>) {
        let headers = &mut answer.headers;
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set("x-pai-complexity", decision.complexity.name());
        set("x-pai-quota-state", decision.quota_state.name());
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
                "Claude's quota is critical until {} ({}), longer than max_wait_secs ({}s)",
                crate::quota::tracker::clock(at),
                quota.reason,
                max_wait.as_secs()
            ),
            None => format!(
                "Claude's quota is critical ({}) with no known reset: not waiting",
                quota.reason
            ),
        })
    }

    /// After a hold: the quota recovered, so the request is routed again for the state it
    /// is in now (a complex request goes back to Claude); if the wait timed out, the chain
    /// goes on past the queue target.
    async fn resume(&self, next: usize, released: Released, trail: &mut Trail) -> Walked {
        if released == Released::TimedOut {
            let waited = self.max_wait().as_secs();
            let position = self
                .decision
                .chain
                .get(next.saturating_sub(1))
                .map_or(0, |c| c.position);
            trail.failed(
                "queue",
                position,
                format!("the quota stayed critical for {waited}s"),
                Passed::Transient,
            );
            let rest = self.decision.chain.get(next..).unwrap_or_default();
            if rest.iter().all(|c| c.is_queue()) {
                return Walked::Failed(ApiError::overloaded(format!(
                    "the Claude quota stayed critical for {waited}s and nothing else may take this request; try again later"
                )));
            }
            return self.walk(&self.decision, next, trail).await;
        }
        let fresh = self.plan_now();
        tracing::info!(reason = %fresh.reason, "released from the queue; routed again");
        trail.plan(&fresh);
        self.walk(&fresh, 0, trail).await
    }

    async fn walk(&self, decision: &Decision, from: usize, trail: &mut Trail) -> Walked {
        let core = &self.core;
        let providers = core.providers.load_full();
        let chain = &decision.chain;
        let mut last_answer: Option<Answer> = None;
        let mut last_error: Option<ApiError> = None;
        let mut passed_on: Option<String> = None;
        let mut sent = 0;
        for (index, candidate) in chain.iter().enumerate().skip(from) {
            let Some(name) = &candidate.provider else {
                match self.hold_here() {
                    Hold::Wait => return Walked::Hold { next: index + 1 },
                    Hold::PassOn(why) => {
                        trail.failed("queue", candidate.position, why.clone(), Passed::Quota);
                        passed_on = Some(why);
                    }
                    Hold::NotNeeded => {}
                }
                continue;
            };
            let sent_to = format!("{name}/{}", candidate.model);
            if trail.tried.contains(&sent_to) {
                continue;
            }
            let Some(provider) = providers.get(name) else {
                continue;
            };
            if let Err(error) = self.load_if_needed(provider).await {
                tracing::warn!(target = %candidate.target, %error, "the model could not be loaded");
                trail.failed(
                    &candidate.target,
                    candidate.position,
                    error.to_string(),
                    Passed::Transient,
                );
                last_error = Some(error.to_api_error());
                continue;
            }
            trail.tried.push(sent_to);
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
                        trail.failed(
                            &candidate.target,
                            candidate.position,
                            why,
                            Passed::Transient,
                        );
                        break;
                    }
                };
                let started = Instant::now();
                sent += 1;
                match self.try_target(provider, candidate).await {
                    Tried::Answered(mut answer) => {
                        admission.succeeded();
                        let latency = started.elapsed().as_secs_f64() * 1000.0;
                        core.outcomes.success(decision.complexity, name, latency);
                        let passed_over = trail.before(candidate.position);
                        let anthropic = provider.observe(answer.status).carries_quota;
                        // Answered without what only Claude does: said, never silent.
                        let degraded = self.needs.claude_only.filter(|_| !anthropic).map(|why| {
                            format!(
                                "{} is not available on {}; Claude was passed over: {}",
                                why.describe(),
                                candidate.target,
                                passed_over.join("; ")
                            )
                        });
                        self.remember_route(
                            decision,
                            candidate,
                            &passed_over,
                            degraded.clone(),
                            anthropic,
                        );
                        answer.target = Some(candidate.target.clone());
                        self.add_headers_of(decision, &mut answer, Some(&candidate.target));
                        add_skipped_header(&mut answer, &passed_over);
                        add_model_headers(&mut answer, candidate);
                        if let Some(value) = degraded.and_then(|d| header_text(&[d])) {
                            answer.headers.insert("x-pai-degraded", value);
                        }
                        return Walked::Answered(answer);
                    }
                    Tried::Unfit(error) => {
                        drop(admission);
                        trail.failed(
                            &candidate.target,
                            candidate.position,
                            error.to_string(),
                            Passed::Lasting,
                        );
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
                        trail.failed(
                            &candidate.target,
                            candidate.position,
                            error.to_string(),
                            Passed::Transient,
                        );
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
                        trail.failed(
                            &candidate.target,
                            candidate.position,
                            why,
                            Passed::Transient,
                        );
                        answer.target = Some(candidate.target.clone());
                        self.add_headers_of(decision, &mut answer, Some(&candidate.target));
                        if self.quota_worse_than(decision, &candidate.model) {
                            // Planned for a quota this answer says is gone: plan again
                            // for the state it revealed (the local model may be there).
                            return Walked::Replan {
                                fallback: Some(Box::new(answer)),
                            };
                        }
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
        if let (None, Some(why), true) = (&last_error, &passed_on, trail.only_quota()) {
            // Only the quota was in the way: come back when it is expected back.
            return Walked::Failed(ApiError::overloaded(format!(
                "{why}, and nothing else may take this request; try again later"
            )));
        }
        Walked::Failed(match last_error {
            None if sent == 0 && trail.only_quota() => ApiError::rate_limited(format!(
                "{}; no other target may take this request",
                trail.summary()
            )),
            Some(error) if sent <= 1 && trail.passed.len() <= 1 => error,
            _ if trail.passed.is_empty() => {
                ApiError::unavailable("no target is configured for this request")
            }
            _ => ApiError::bad_gateway(format!(
                "no target could take this request — {}",
                trail.summary()
            )),
        })
    }

    /// Whether the quota turned out worse than `decision` was planned for: it routes a
    /// row above it now, or the model just asked is capped (its family's week is gone).
    fn quota_worse_than(&self, decision: &Decision, asked: &str) -> bool {
        let quota = self.core.quota.snapshot();
        self.mode == Mode::Auto
            && (quota.state.level() > decision.level || quota.cap_for(asked).is_some())
    }

    /// The route the tray and this session's status line show.
    fn remember_route(
        &self,
        decision: &Decision,
        candidate: &Candidate,
        passed_over: &[String],
        degraded: Option<String>,
        on_claude: bool,
    ) {
        let target = candidate.target.as_str();
        let core = &self.core;
        if self.priority != Priority::Batch {
            core.last_route
                .send_replace(Some(format!("{target} ({})", decision.complexity.name())));
        }
        if let Some(session) = Sessions::id(&self.headers).filter(|_| !self.is_count) {
            if let Some(provider) = &candidate.provider {
                core.sessions
                    .answered(session, self.turn(), decision.complexity, provider);
            }
            core.sessions.record(
                session,
                SessionRoute {
                    target: target.to_owned(),
                    complexity: decision.complexity.name().to_owned(),
                    quota_state: decision.quota_state.name().to_owned(),
                    passed_over: passed_over.to_vec(),
                    model_change: candidate.model_change.clone(),
                    degraded,
                    at: Utc::now(),
                },
                on_claude,
            );
        }
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
    async fn try_target(&self, provider: &AnyProvider, candidate: &Candidate) -> Tried {
        let model = candidate.model.as_str();
        let (upstream, permit, reading, changes) = match self.attempt(provider, model).await {
            Ok(sent) => sent,
            Err(error) if error.is_provider_fault() => return Tried::Failed(error),
            Err(error) => return Tried::Unfit(error),
        };
        let status = upstream.status;
        let retry_after = backoff::retry_after(&upstream.headers);
        let fails_over = upstream.should_fail_over() || reading.own_key_refused;
        let config = provider.config();
        let tried = match commit(upstream, permit, config, self.stream, fails_over).await {
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
        };
        let Tried::Answered(mut answer) = tried else {
            return tried;
        };
        let flaw = (status.is_success() && !self.is_count)
            .then(|| self.remember_answer(&mut answer, reading, provider.name(), candidate))
            .flatten();
        add_adjusted_header(&mut answer, &changes);
        match flaw {
            // Nothing reached the client yet: another target may answer it right.
            Some((Flaw::InvalidToolCall, why)) => Tried::FailOver {
                answer,
                why: format!("its answer cannot be used: {why}"),
                retry_after: None,
                counts_against_health: false,
            },
            _ => Tried::Answered(answer),
        }
    }

    /// What the answer carries, remembered once it has passed: its tool calls, as
    /// issued by this target (the next request answers them and continues here), and —
    /// from Anthropic — its thinking blocks, as signed by `model`.
    /// Any other server's answer is judged too (see [`super::judge`]): a whole one at
    /// once — its flaw is returned, so a tool call that cannot run fails over before the
    /// client sees it — a stream when it has passed.
    fn remember_answer(
        &self,
        answer: &mut Answer,
        reading: Reading,
        provider: &str,
        candidate: &Candidate,
    ) -> Option<(Flaw, String)> {
        let memory = Memory {
            core: self.core.clone(),
            signer: reading.signs_thinking.then(|| candidate.model.clone()),
            issuer: Issuer {
                target: candidate.target.clone(),
                provider: provider.to_owned(),
                model: candidate.model.clone(),
            },
            judging: (!reading.carries_quota).then(|| Judging {
                complexity: self.decision.complexity,
                request: self.body.bytes().clone(),
            }),
        };
        match std::mem::replace(&mut answer.body, AnswerBody::Full(Default::default())) {
            AnswerBody::Events(inner) => {
                answer.body = AnswerBody::Events(traced(inner, memory));
                None
            }
            AnswerBody::Full(bytes) => {
                let flaw = memory.keep(trace::of_message(&bytes));
                answer.body = AnswerBody::Full(bytes);
                flaw
            }
            raw => {
                answer.body = raw;
                None
            }
        }
    }

    /// One attempt on one provider, through its concurrency gate; the slot is returned
    /// with the answer and kept until its body has been sent. The provider shapes the
    /// request first and reads its answer after: what it says of the quota, its key, its
    /// thinking signatures.
    async fn attempt(
        &self,
        provider: &AnyProvider,
        model: &str,
    ) -> Result<(Upstream, Option<Permit>, Reading, Vec<String>), ProviderError> {
        let core = &self.core;
        let config = provider.config();
        let permit = if self.is_count {
            None
        } else {
            let gate = core.queue.gate(&config.name, config.max_concurrent);
            Some(gate.acquire(self.priority, self.ticket).await)
        };
        let shaped = provider.prepare(&Outgoing {
            body: &self.body,
            model,
            requested_model: self.requested_model.as_deref(),
            untouched: self.mode == Mode::Paused,
            signatures: &core.signatures,
        });
        let request = MessagesRequest {
            body: shaped.as_ref().map_or(&self.body, |s| &s.body),
            original: &self.body,
            model,
            requested_model: self.requested_model.as_deref(),
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
        let reading = provider.observe(upstream.status);
        if reading.carries_quota {
            core.quota
                .observe_response(upstream.status, &upstream.headers, Some(model));
        }
        let changes = shaped.map(|s| s.changes).unwrap_or_default();
        Ok((upstream, permit, reading, changes))
    }
}

/// Where an answer's traces are kept.
struct Memory {
    core: super::Core,
    /// The model that signed its thinking blocks (Anthropic's answers only).
    signer: Option<String>,
    issuer: Issuer,
    /// Whether it worked is judged (every server's answers but Anthropic's).
    judging: Option<Judging>,
}

/// What judging an answer needs: its class, and the request (its tools).
struct Judging {
    complexity: crate::types::Complexity,
    request: bytes::Bytes,
}

impl Memory {
    /// Keeps what the answer carried; returns what was wrong with it, if it was judged
    /// and something was.
    fn keep(&self, carried: trace::Carried) -> Option<(Flaw, String)> {
        if let Some(model) = &self.signer {
            for signature in &carried.signatures {
                self.core.signatures.record(model, signature);
            }
        }
        self.core
            .tool_calls
            .record(&self.issuer, &carried.tool_calls);
        let judging = self.judging.as_ref()?;
        let content = carried.content?;
        let tools = super::judge::Tools::of_request(&judging.request);
        let flaw = super::judge::flaw(&content, &tools);
        if let Some((_, why)) = &flaw {
            tracing::info!(target = %self.issuer.target, %why, "an answer that did not work");
        }
        self.core.outcomes.judged(
            judging.complexity,
            &self.issuer.provider,
            flaw.as_ref().map(|(f, _)| *f),
            Utc::now(),
        );
        flaw
    }
}

/// A stream, passed on chunk by chunk, what it carried remembered when it ends.
fn traced(inner: BodyStream, memory: Memory) -> BodyStream {
    let stream = async_stream::stream! {
        let mut inner = inner;
        let mut trace = if memory.judging.is_some() {
            trace::Trace::judging()
        } else {
            trace::Trace::default()
        };
        while let Some(chunk) = futures_util::StreamExt::next(&mut inner).await {
            if let Ok(bytes) = &chunk {
                trace.feed(bytes);
            }
            yield chunk;
        }
        memory.keep(trace.carried());
    };
    Box::pin(stream)
}

/// `x-pai-model` and `x-pai-model-change` when a Claude model other than the client's
/// answered: the user sees every change of their model.
fn add_model_headers(answer: &mut Answer, candidate: &Candidate) {
    if let Some(change) = &candidate.model_change {
        if let Ok(model) = HeaderValue::from_str(&candidate.model) {
            answer.headers.insert("x-pai-model", model);
        }
        if let Some(value) = header_text(&[change.replace('→', "->")]) {
            answer.headers.insert("x-pai-model-change", value);
        }
    }
}

/// `x-pai-adjusted`: what the proxy changed in the request for its target.
fn add_adjusted_header(answer: &mut Answer, changes: &[String]) {
    if let Some(value) = header_text(changes) {
        answer.headers.insert("x-pai-adjusted", value);
    }
}

/// A list in one header value: joined with `; `, anything but printable ASCII as `?`.
fn header_text(items: &[String]) -> Option<HeaderValue> {
    if items.is_empty() {
        return None;
    }
    let text: String = items
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
    HeaderValue::from_str(&text).ok()
}

/// `x-pai-skipped`: the targets passed over before the one that answered, and why.
fn add_skipped_header(answer: &mut Answer, passed_over: &[String]) {
    if let Some(value) = header_text(passed_over) {
        answer.headers.insert("x-pai-skipped", value);
    }
}

impl AnswerBody {
    /// Whether this is a stream the client receives as events.
    pub fn is_events(&self) -> bool {
        matches!(self, AnswerBody::Events(_))
    }
}
