//! "Learning from constraints": what happened per (complexity, target), and demotion of a
//! target that keeps failing for a class — moved to the end of that class's chains for a
//! cool-down, with the reason shown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::types::Complexity;

/// Failures in a row that demote a target for a class.
const DEMOTE_AFTER: u32 = 3;
const DEMOTION: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub successes: u64,
    pub failures: u64,
    pub failures_in_a_row: u32,
    pub total_latency_ms: f64,
    pub demoted_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRow {
    pub complexity: Complexity,
    pub provider: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Default)]
pub struct Outcomes(Arc<Mutex<HashMap<(Complexity, String), Outcome>>>);

impl Outcomes {
    fn lock(&self) -> MutexGuard<'_, HashMap<(Complexity, String), Outcome>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn success(&self, complexity: Complexity, provider: &str, latency_ms: f64) {
        let mut map = self.lock();
        let entry = map.entry((complexity, provider.to_owned())).or_default();
        entry.successes += 1;
        entry.failures_in_a_row = 0;
        entry.total_latency_ms += latency_ms;
        entry.demoted_until = None;
    }

    pub fn failure(
        &self,
        complexity: Complexity,
        provider: &str,
        error: String,
        now: DateTime<Utc>,
    ) {
        let mut map = self.lock();
        let entry = map.entry((complexity, provider.to_owned())).or_default();
        entry.failures += 1;
        entry.failures_in_a_row += 1;
        entry.last_error = Some(error);
        if entry.failures_in_a_row >= DEMOTE_AFTER && entry.demoted_until.is_none_or(|t| t <= now) {
            tracing::info!(
                provider,
                complexity = complexity.name(),
                "target demoted after repeated failures"
            );
            entry.demoted_until = Some(now + DEMOTION);
        }
    }

    /// Why `provider` is demoted for `complexity` now, if it is.
    pub fn demoted(
        &self,
        complexity: Complexity,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let map = self.lock();
        let entry = map.get(&(complexity, provider.to_owned()))?;
        let until = entry.demoted_until.filter(|t| *t > now)?;
        Some(format!(
            "demoted for {} work until {}: {} failures in a row ({})",
            complexity.name(),
            crate::quota::tracker::clock(until),
            entry.failures_in_a_row,
            entry.last_error.as_deref().unwrap_or("errors")
        ))
    }

    pub fn rows(&self) -> Vec<OutcomeRow> {
        let mut rows: Vec<OutcomeRow> = self
            .lock()
            .iter()
            .map(|((complexity, provider), outcome)| OutcomeRow {
                complexity: *complexity,
                provider: provider.clone(),
                outcome: outcome.clone(),
            })
            .collect();
        rows.sort_by(|a, b| (a.complexity, &a.provider).cmp(&(b.complexity, &b.provider)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_in_a_row_demote_for_that_class_only() {
        let outcomes = Outcomes::default();
        let now = Utc::now();
        for _ in 0..2 {
            outcomes.failure(Complexity::Complex, "grok", "HTTP 500".into(), now);
        }
        assert!(outcomes.demoted(Complexity::Complex, "grok", now).is_none());
        outcomes.failure(Complexity::Complex, "grok", "HTTP 500".into(), now);
        let why = outcomes.demoted(Complexity::Complex, "grok", now).unwrap();
        assert!(why.starts_with("demoted for complex work until"), "{why}");
        assert!(outcomes.demoted(Complexity::Simple, "grok", now).is_none());
        assert!(outcomes
            .demoted(Complexity::Complex, "grok", now + DEMOTION)
            .is_none());
        outcomes.success(Complexity::Complex, "grok", 10.0);
        assert!(outcomes.demoted(Complexity::Complex, "grok", now).is_none());
    }
}
