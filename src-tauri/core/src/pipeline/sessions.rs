//! Where each Claude Code session's latest request went, so its status line can say it
//! (`→ lmstudio (simple)`). Claude Code names its session in `X-Claude-Code-Session-Id`;
//! requests without it (SDKs, jobs) are not kept.
//!
//! Bounded: the oldest session is forgotten once [`MAX_SESSIONS`] are known, so a client
//! that invents a session per request cannot grow the proxy.
//!
//! Imports nothing of the core: the walk records into it, `/health` reads it.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::{Deserialize, Serialize};

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

#[derive(Default)]
pub struct Sessions {
    routes: Mutex<HashMap<String, SessionRoute>>,
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

    pub fn record(&self, id: &str, route: SessionRoute) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if routes.len() >= MAX_SESSIONS && !routes.contains_key(id) {
            let oldest = routes
                .iter()
                .min_by_key(|(_, r)| r.at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                routes.remove(&oldest);
            }
        }
        routes.insert(id.to_owned(), route);
    }

    pub fn get(&self, id: &str) -> Option<SessionRoute> {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.get(id).cloned()
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
            sessions.record(&format!("s{n}"), route("lmstudio", n as i64 + 10));
        }
        sessions.record("s0", route("claude:haiku", 5_000));
        sessions.record("new", route("claude:sonnet", 6_000));
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
