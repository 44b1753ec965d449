//! The first step of every request: parse the body (bad input is the client's error, in
//! Anthropic's shape), classify it, and route it — without sending anything. Route
//! preview stops here.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use super::sessions::Sessions;
use crate::classify::{Classification, RequestFacts};
use crate::pipeline::Core;
use crate::providers::Provider;
use crate::queue::Priority;
use crate::router::{self, ClaudeOnly, Decision, Flaw, Issuer, Mode, Needs, Situation};
use crate::store::RequestRecord;
use crate::types::Complexity;
use crate::wire::body::MessagesBody;
use crate::wire::summary::MessagesSummary;
use crate::wire::ApiError;

/// Who sent the request: it decides its priority and how long it may wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Origin {
    /// A client waiting at the other end of a connection (Claude Code, an SDK).
    Client,
    /// An async job, which may wait for the quota up to `max_wait`.
    Job { max_wait: Duration },
}

/// A request parsed, classified and routed, owned so that it can outlive the handler
/// (a held stream, a shared call).
pub struct Prepared {
    pub(super) core: Core,
    pub decision: Decision,
    /// Kept to route again when a held request is released.
    pub(super) classification: Classification,
    pub requested_model: Option<String>,
    pub(super) body: MessagesBody,
    pub(super) headers: HeaderMap,
    pub(super) path_and_query: String,
    pub input_tokens: u64,
    pub(super) needs: Needs,
    /// A tool loop: the target that issued the tool calls this request answers.
    pub(super) continues_on: Option<Issuer>,
    turn: u64,
    pub stream: bool,
    pub(super) is_count: bool,
    pub(super) mode: Mode,
    pub(super) priority: Priority,
    pub(super) origin: Origin,
    pub(super) ticket: u64,
    /// Told when the request begins to wait (for the quota, for a model to load), so a
    /// stream gets its headers and pings meanwhile.
    pub(super) waiting: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl Prepared {
    /// Parses, classifies and routes a Messages (or `count_tokens`) body.
    pub fn new(
        core: &Core,
        body: Bytes,
        headers: HeaderMap,
        path_and_query: String,
        is_count: bool,
        origin: Origin,
    ) -> Result<Prepared, ApiError> {
        let summary = MessagesSummary::parse(&body)?;
        let facts = RequestFacts::from_summary(&summary, &body);
        let config = core.config();
        let mode = core.mode.get();
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
            let fresh = core.classifier().classify(&facts, explicit);
            // A session's work keeps its class against noise (side requests and an
            // explicit class are what they say).
            match Sessions::id(&headers).filter(|_| explicit.is_none() && facts.side.is_none()) {
                Some(session) if !is_count => core.sessions.steady(session, fresh),
                _ => fresh,
            }
        };
        let continues_on = facts
            .answered_tool_calls
            .iter()
            .find_map(|id| core.tool_calls.issuer(id));
        if !is_count {
            judge_the_last_answer(core, &headers, &facts, classification.complexity);
        }
        let needs = Needs {
            input_tokens: facts.input_tokens,
            tools: facts.tools > 0,
            images: facts.has_images,
            claude_only: facts
                .claude_only
                .filter(|why| *why != ClaudeOnly::AutoMode || config.routing.auto_mode_on_claude),
        };
        let quota = core.quota.snapshot();
        let decision = router::plan(
            &config,
            Situation {
                mode,
                quota: &quota,
                health: &core.health,
                outcomes: &core.outcomes,
                models: &core.models,
                continues_on: continues_on.as_ref(),
            },
            &classification,
            summary.model(),
            needs,
        );
        let priority = match origin {
            Origin::Job { .. } => Priority::Batch,
            Origin::Client if decision.complexity == Complexity::Simple => Priority::Background,
            Origin::Client => Priority::Interactive,
        };
        Ok(Prepared {
            ticket: core.queue.ticket(),
            waiting: std::sync::Mutex::new(None),
            core: core.clone(),
            decision,
            classification,
            requested_model: summary.model().map(str::to_owned),
            stream: summary.is_stream() && !is_count,
            input_tokens: facts.input_tokens,
            needs,
            continues_on,
            turn: facts.turn,
            body: MessagesBody::new(body.clone(), &summary),
            headers,
            path_and_query,
            is_count,
            mode,
            priority,
            origin,
        })
    }

    /// The turn this request asks for, as its session's last answered one.
    pub(super) fn turn(&self) -> u64 {
        self.turn
    }

    /// What the request log keeps of the decision.
    pub fn describe(&self, record: &mut RequestRecord) {
        record.model = self.requested_model.clone();
        record.stream = self.stream;
        record.complexity = Some(self.decision.complexity.name().to_owned());
        record.quota_state = Some(self.decision.quota_state.name().to_owned());
        record.route_reason = Some(self.decision.reason.clone());
    }

    /// Non-streaming Messages requests from clients may share a call.
    pub(super) fn coalescable(&self) -> bool {
        self.core.config().queue.coalesce
            && !self.stream
            && !self.is_count
            && self.origin == Origin::Client
    }

    /// How long a `queue` target may hold this request.
    pub(super) fn max_wait(&self) -> Duration {
        match self.origin {
            Origin::Client => self.core.config().queue.max_wait,
            Origin::Job { max_wait } => max_wait,
        }
    }
}

/// What this request says of the answer before it: a tool result that is an error counts
/// against the target that made the call; the same turn sent again within a minute
/// against the one that answered it.
/// Anthropic's own answers are the reference and are not judged.
fn judge_the_last_answer(
    core: &Core,
    headers: &HeaderMap,
    facts: &RequestFacts,
    complexity: Complexity,
) {
    let providers = core.providers.load();
    let judged = |provider: &str| {
        providers
            .get(provider)
            .is_some_and(|p| !p.observe(http::StatusCode::OK).carries_quota)
    };
    let now = chrono::Utc::now();
    for id in &facts.failed_tool_calls {
        if let Some(issuer) = core.tool_calls.issuer(id).filter(|i| judged(&i.provider)) {
            core.outcomes
                .judged(complexity, &issuer.provider, Some(Flaw::ToolError), now);
        }
    }
    let resent = Sessions::id(headers).and_then(|id| core.sessions.resent(id, facts.turn));
    if let Some((class, provider)) = resent.filter(|(_, p)| judged(p)) {
        core.outcomes
            .judged(class, &provider, Some(Flaw::Resent), now);
    }
}
