//! The models Anthropic serves now, newest first, from `GET /v1/models` (Anthropic, "List
//! Models": "The Models API response can be used to determine which models are
//! available for use in the API. More recently released models are listed first."). A
//! tier (`claude:sonnet`) resolves to the newest model of its family listed here, so the
//! default config never sends a model of an older generation than the user's.
//!
//! Fetched with the client's own credentials (the proxy has none of its own), on the
//! first request that carries them and then at most daily; a failed fetch is tried again
//! after an hour. Until then, or without an answer, the config's tier ids stand.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::models::{Family, Model};

/// How long a list is trusted.
const FRESH_FOR: chrono::Duration = chrono::Duration::hours(24);
/// How long after a failed fetch the next one is tried.
const RETRY_AFTER: chrono::Duration = chrono::Duration::hours(1);

#[derive(Clone, Default)]
pub struct Catalog(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Model ids, newest first.
    models: Vec<String>,
    fetched_at: Option<DateTime<Utc>>,
    /// A fetch is under way or failed at this time.
    tried_at: Option<DateTime<Utc>>,
}

impl Catalog {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest model of `family` Anthropic lists, if the list is known.
    pub fn newest(&self, family: Family) -> Option<String> {
        self.lock()
            .models
            .iter()
            .find(|id| Model::parse(id).is_some_and(|m| m.family == family))
            .cloned()
    }

    /// Every model listed, newest first.
    pub fn models(&self) -> Vec<String> {
        self.lock().models.clone()
    }

    /// Whether a fetch is due now; if so, it is counted as begun (one at a time).
    pub fn begin_fetch(&self, now: DateTime<Utc>) -> bool {
        let mut state = self.lock();
        let fresh = state.fetched_at.is_some_and(|at| now - at < FRESH_FOR);
        let tried = state.tried_at.is_some_and(|at| now - at < RETRY_AFTER);
        if fresh || tried {
            return false;
        }
        state.tried_at = Some(now);
        true
    }

    /// A `GET /v1/models` answer; returns how many models it listed.
    pub fn accept(&self, body: &[u8], now: DateTime<Utc>) -> Result<usize, String> {
        #[derive(serde::Deserialize)]
        struct List {
            data: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            id: String,
        }
        let list: List =
            serde_json::from_slice(body).map_err(|e| format!("not a model list: {e}"))?;
        let models: Vec<String> = list.data.into_iter().map(|e| e.id).collect();
        let count = models.len();
        let mut state = self.lock();
        state.models = models;
        state.fetched_at = Some(now);
        state.tried_at = None;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_of_each_family_from_the_list_and_fetches_at_most_daily() {
        let catalog = Catalog::default();
        let now = Utc::now();
        assert_eq!(catalog.newest(Family::Opus), None);
        assert!(catalog.begin_fetch(now));
        assert!(!catalog.begin_fetch(now), "one fetch at a time");
        let body = br#"{"data":[{"type":"model","id":"claude-fable-5-2"},{"type":"model","id":"claude-opus-5-5"},{"type":"model","id":"claude-sonnet-5-5"},{"type":"model","id":"claude-opus-4-8"},{"type":"model","id":"claude-haiku-4-5-20251001"}],"has_more":false}"#;
        assert_eq!(catalog.accept(body, now), Ok(5));
        assert_eq!(
            catalog.newest(Family::Opus).as_deref(),
            Some("claude-opus-5-5")
        );
        assert_eq!(
            catalog.newest(Family::Haiku).as_deref(),
            Some("claude-haiku-4-5-20251001")
        );
        assert!(!catalog.begin_fetch(now + chrono::Duration::hours(23)));
        assert!(catalog.begin_fetch(now + chrono::Duration::hours(25)));
        assert!(catalog.accept(b"<html>", now).is_err());
    }
}
