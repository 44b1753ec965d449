//! Each Claude Code session as the proxy follows it: where its latest request went, so
//! its status line can say it (`→ lmstudio (simple)`); the class its work is in, kept
//! steady against classification noise (every switch between Claude and a local model
//! costs a cold prompt cache on both sides); how often it switched. Claude Code names its
//! session in `X-Claude-Code-Session-Id`; requests without it (SDKs, jobs) are not kept.
//! Beside it, [`ToolCalls`]: which target issued which tool call, so that a tool loop
//! continues where it began.
//!
//! Bounded: the oldest session is forgotten once [`MAX_SESSIONS`] are known, so a client
//! that invents a session per request cannot grow the proxy.
//!
//! Imports the classification's and the router's types only: the walk records into it,
//! `/health` and `/api/stats` read it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::classify::Classification;
pub use crate::router::Issuer;
use crate::types::Complexity;

/// Sessions remembered at once.
pub const MAX_SESSIONS: usize = 256;

/// The header Claude Code names its session in.
pub const SESSION_HEADER: &str = "x-claude-code-session-id";

/// Longest session id kept (Claude Code's are UUIDs).
const MAX_ID_LEN: usize = 128;

/// The latest request of one session: the target that answered and why it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRoute {
    /// The target that answered, e.g. `lmstudio` or `claude:sonnet`.
    pub target: String,
    /// How the request was classified: `simple`, `medium`, `complex`.
    pub complexity: String,
    /// The quota state it was routed for.
    pub quota_state: String,
    /// Targets tried or skipped before it, with why ("claude:opus: Opus week cap reached").
    #[serde(default)]
    pub passed_over: Vec<String>,
    /// A Claude model other than the client's, and why ("Opus 5.5 → Sonnet 5.5: …").
    #[serde(default)]
    pub model_change: Option<String>,
    /// What the answer went without (a Claude-only request answered elsewhere).
    #[serde(default)]
    pub degraded: Option<String>,
    pub at: DateTime<Utc>,
}

impl SessionRoute {
    /// The targets passed over, by name only (`claude:opus`), for a short line.
    pub fn passed_over_targets(&self) -> impl Iterator<Item = &str> {
        self.passed_over
            .iter()
            .map(|p| p.split_once(": ").map_or(p.as_str(), |(target, _)| target))
    }
}

/// What the proxy keeps of one session.
#[derive(Debug, Clone, Default)]
struct Session {
    route: Option<SessionRoute>,
    /// The class its work is in now, and a lower one seen once since (a second time in a
    /// row, and the session steps down to it).
    class: Option<Complexity>,
    lower_once: Option<Complexity>,
    /// Its latest answer came from Anthropic (`Some(false)`: another server).
    on_claude: Option<bool>,
    requests: u64,
    /// Times its answers moved between Claude and another server.
    switches: u64,
    /// Its latest answered turn: the turn, its class, the provider that answered, when.
    answered: Option<(u64, Complexity, String, DateTime<Utc>)>,
    last_seen: DateTime<Utc>,
}

/// One session in `/api/stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStats {
    pub id: String,
    pub requests: u64,
    pub switches: u64,
    pub target: Option<String>,
    pub class: Option<Complexity>,
}

#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// The session a request belongs to, when its client named one.
    pub fn id(headers: &HeaderMap) -> Option<&str> {
        headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.len() >= MAX_SESSIONS && !sessions.contains_key(id) {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        let session = sessions.entry(id.to_owned()).or_default();
        session.last_seen = Utc::now();
        f(session)
    }

    /// The class a session's request is routed as: a higher class than the session's at
    /// once (hard work is never sent down on noise), a lower one only when it comes twice
    /// in a row.
    pub fn steady(&self, id: &str, fresh: Classification) -> Classification {
        self.with(id, |session| match session.class {
            Some(current) if fresh.complexity < current => {
                if session.lower_once == Some(fresh.complexity) {
                    session.class = Some(fresh.complexity);
                    session.lower_once = None;
                    fresh
                } else {
                    session.lower_once = Some(fresh.complexity);
                    Classification {
                        complexity: current,
                        score: fresh.score,
                        reason: format!(
                            "{}; the session stays {} until it asks for {} work twice in a row",
                            fresh.reason,
                            current.name(),
                            fresh.complexity.name()
                        ),
                    }
                }
            }
            _ => {
                session.class = Some(fresh.complexity);
                session.lower_once = None;
                fresh
            }
        })
    }

    /// Where a session's latest request went; `on_claude`: Anthropic answered it.
    pub fn record(&self, id: &str, route: SessionRoute, on_claude: bool) {
        self.with(id, |session| {
            if session.on_claude.is_some_and(|was| was != on_claude) {
                session.switches += 1;
            }
            session.on_claude = Some(on_claude);
            session.requests += 1;
            session.route = Some(route);
        });
    }

    /// `turn` was answered by `provider` as `complexity` work.
    pub fn answered(&self, id: &str, turn: u64, complexity: Complexity, provider: &str) {
        self.with(id, |session| {
            session.answered = Some((turn, complexity, provider.to_owned(), Utc::now()));
        });
    }

    /// The class and provider of an answer the client asks for again now — the same turn
    /// within [`RESENT_WITHIN`] — if it does.
    pub fn resent(&self, id: &str, turn: u64) -> Option<(Complexity, String)> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let (last, complexity, provider, at) = sessions.get(id)?.answered.clone()?;
        (last == turn && Utc::now() - at < RESENT_WITHIN).then_some((complexity, provider))
    }

    pub fn get(&self, id: &str) -> Option<SessionRoute> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).and_then(|s| s.route.clone())
    }

    /// Every session known, the latest first.
    pub fn stats(&self) -> Vec<SessionStats> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<(&String, &Session)> = sessions.iter().collect();
        list.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_seen));
        list.into_iter()
            .map(|(id, s)| SessionStats {
                id: id.clone(),
                requests: s.requests,
                switches: s.switches,
                target: s.route.as_ref().map(|r| r.target.clone()),
                class: s.class,
            })
            .collect()
    }
}

/// The same turn sent again this soon says its answer did not work.
pub const RESENT_WITHIN: chrono::Duration = chrono::Duration::minutes(1);

/// Tool calls remembered at once.
pub const MAX_TOOL_CALLS: usize = 10_000;

/// Which target issued which tool call (by its `tool_use` id), bounded: the oldest are
/// forgotten first.
#[derive(Default)]
pub struct ToolCalls(Mutex<(HashMap<String, Issuer>, VecDeque<String>)>);

impl ToolCalls {
    pub fn record(&self, issuer: &Issuer, ids: &[String]) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (by_id, order) = &mut *known;
        for id in ids
            .iter()
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN)
        {
            if by_id.insert(id.clone(), issuer.clone()).is_none() {
                order.push_back(id.clone());
            }
        }
        while order.len() > MAX_TOOL_CALLS {
            if let Some(oldest) = order.pop_front() {
                by_id.remove(&oldest);
            }
        }
    }

    /// Who issued the tool call `id`, if the proxy relayed it.
    pub fn issuer(&self, id: &str) -> Option<Issuer> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.0.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(target: &str, at: i64) -> SessionRoute {
        SessionRoute {
            target: target.to_owned(),
            complexity: "simple".to_owned(),
            quota_state: "normal".to_owned(),
            passed_over: vec!["claude:opus: Opus week cap reached".to_owned()],
            model_change: None,
            degraded: None,
            at: DateTime::from_timestamp(at, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn the_oldest_session_is_forgotten_first() {
        let sessions = Sessions::default();
        for n in 0..MAX_SESSIONS {
            sessions.record(&format!("s{n}"), route("lmstudio", n as i64 + 10), false);
        }
        sessions.record("s0", route("claude:haiku", 5_000), true);
        sessions.record("new", route("claude:sonnet", 6_000), true);
        assert_eq!(sessions.get("s1"), None, "the oldest went");
        assert_eq!(sessions.get("s0").unwrap().target, "claude:haiku");
        assert_eq!(sessions.get("new").unwrap().target, "claude:sonnet");
        assert_eq!(
            sessions
                .get("new")
                .unwrap()
                .passed_over_targets()
                .collect::<Vec<_>>(),
            ["claude:opus"]
        );
    }

    fn classified(complexity: Complexity) -> Classification {
        Classification {
            complexity,
            score: 0.0,
            reason: "test".into(),
        }
    }

    #[test]
    fn a_session_steps_up_at_once_and_down_only_when_asked_twice() {
        let sessions = Sessions::default();
        let steady = |c| sessions.steady("s", classified(c)).complexity;
        assert_eq!(steady(Complexity::Medium), Complexity::Medium);
        assert_eq!(
            steady(Complexity::Simple),
            Complexity::Medium,
            "noise: once"
        );
        assert_eq!(steady(Complexity::Medium), Complexity::Medium);
        assert_eq!(steady(Complexity::Simple), Complexity::Medium);
        assert_eq!(
            steady(Complexity::Simple),
            Complexity::Simple,
            "twice in a row"
        );
        assert_eq!(
            steady(Complexity::Complex),
            Complexity::Complex,
            "up at once"
        );
    }

    #[test]
    fn switches_between_claude_and_other_servers_are_counted() {
        let sessions = Sessions::default();
        for on_claude in [true, true, false, false, true] {
            sessions.record("s", route("x", 1), on_claude);
        }
        let stats = sessions.stats();
        assert_eq!((stats[0].requests, stats[0].switches), (5, 2));
        let calls = ToolCalls::default();
        let issuer = Issuer {
            target: "lmstudio".into(),
            provider: "lmstudio".into(),
            model: "m".into(),
        };
        calls.record(&issuer, &["call_1".to_owned()]);
        assert_eq!(calls.issuer("call_1"), Some(issuer));
        assert_eq!(calls.issuer("call_2"), None);
    }

    #[test]
    fn only_a_plausible_session_id_is_taken() {
        let mut headers = HeaderMap::new();
        assert_eq!(Sessions::id(&headers), None);
        headers.insert(SESSION_HEADER, "  ".parse().unwrap());
        assert_eq!(Sessions::id(&headers), None);
        headers.insert(SESSION_HEADER, "x".repeat(200).parse().unwrap());
        assert_eq!(Sessions::id(&headers), None);
        headers.insert(SESSION_HEADER, "4f1c-77".parse().unwrap());
        assert_eq!(Sessions::id(&headers), Some("4f1c-77"));
    }
}
