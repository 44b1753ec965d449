//! "Learning from constraints": what happened per (complexity, target), and demotion of a
//! target that keeps failing for a class — moved to the end of that class's chains for a
//! cool-down, with the reason shown. Failing is not only an error: an answer can come back
//! and still not work ([`Flaw`]: a tool call Claude Code cannot run, an empty answer, the
//! user asking again, a tool result that is an error, a short answer cut off). A target
//! whose recent answers for a class are flawed too often is taken off that class for a
//! while, with the evidence ("4 of its last 10 answers had invalid tool calls"), and tried
//! again after it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::types::Complexity;

/// Failures in a row that demote a target for a class.
const DEMOTE_AFTER: u32 = 3;
const DEMOTION: Duration = Duration::minutes(10);
/// Answers judged per (class, target), and how many flawed ones take it off the class.
pub const RECENT: usize = 10;
pub const FLAWED_TO_DEMOTE: usize = 4;
/// How long a target with flawed answers is off a class before it is tried again.
pub const QUALITY_DEMOTION: Duration = Duration::minutes(30);

/// Why an answer that came back did not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Flaw {
    /// A tool call naming a tool the request did not offer, or with input that does not
    /// fit the tool's `input_schema`.
    InvalidToolCall,
    /// Nothing in it: no text, no tool call.
    Empty,
    /// The client sent the same turn again within a minute.
    Resent,
    /// The next request answered its tool call with an error.
    ToolError,
    /// Stopped at `max_tokens` after a short answer.
    CutShort,
}

impl Flaw {
    /// "had invalid tool calls", for "4 of its last 10 answers had invalid tool calls".
    pub fn evidence(self) -> &'static str {
        match self {
            Flaw::InvalidToolCall => "had invalid tool calls",
            Flaw::Empty => "were empty",
            Flaw::Resent => "were asked again at once",
            Flaw::ToolError => "led to tool errors",
            Flaw::CutShort => "were cut off short at max_tokens",
        }
    }
}

/// A target taken off a class for its flawed answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demotion {
    pub complexity: Complexity,
    pub provider: String,
    pub until: DateTime<Utc>,
    /// "lmstudio taken off medium work: 4 of its last 10 answers had invalid tool calls"
    pub why: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub successes: u64,
    pub failures: u64,
    pub failures_in_a_row: u32,
    pub total_latency_ms: f64,
    pub demoted_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The latest answers judged (at most [`RECENT`]): `None` worked, `Some` did not.
    #[serde(skip)]
    recent: VecDeque<Option<Flaw>>,
    /// Flawed among them, and of how many.
    pub recent_flawed: usize,
    pub recent_judged: usize,
    /// Why it is off this class for its answers, while it is.
    pub quality_demotion: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRow {
    pub complexity: Complexity,
    pub provider: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone)]
pub struct Outcomes {
    map: Arc<Mutex<HashMap<(Complexity, String), Outcome>>>,
    demotions: tokio::sync::broadcast::Sender<Demotion>,
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes {
            map: Arc::default(),
            demotions: tokio::sync::broadcast::channel(16).0,
        }
    }
}

impl Outcomes {
    fn lock(&self) -> MutexGuard<'_, HashMap<(Complexity, String), Outcome>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Targets taken off a class for their answers, as it happens.
    pub fn demotions(&self) -> tokio::sync::broadcast::Receiver<Demotion> {
        self.demotions.subscribe()
    }

    /// An answer of `provider` for `complexity` worked (`None`) or did not. Returns the
    /// demotion it caused, if it caused one.
    pub fn judged(
        &self,
        complexity: Complexity,
        provider: &str,
        flaw: Option<Flaw>,
        now: DateTime<Utc>,
    ) -> Option<Demotion> {
        let mut map = self.lock();
        let entry = map.entry((complexity, provider.to_owned())).or_default();
        if entry.quality_demotion.is_some() && entry.demoted_until.is_none_or(|t| t <= now) {
            // Its time off is over: a fresh start.
            entry.quality_demotion = None;
            entry.recent.clear();
        }
        entry.recent.push_back(flaw);
        while entry.recent.len() > RECENT {
            entry.recent.pop_front();
        }
        let flaws: Vec<Flaw> = entry.recent.iter().flatten().copied().collect();
        entry.recent_flawed = flaws.len();
        entry.recent_judged = entry.recent.len();
        if flaws.len() < FLAWED_TO_DEMOTE || entry.quality_demotion.is_some() {
            return None;
        }
        let mut counts: Vec<(Flaw, usize)> = Vec::new();
        for flaw in &flaws {
            match counts.iter_mut().find(|(f, _)| f == flaw) {
                Some((_, n)) => *n += 1,
                None => counts.push((*flaw, 1)),
            }
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let (most, count) = counts[0];
        let why = format!(
            "{provider} taken off {} work: {count} of its last {} answers {}",
            complexity.name(),
            entry.recent.len(),
            most.evidence()
        );
        let until = now + QUALITY_DEMOTION;
        tracing::warn!(%why, "target demoted for its answers");
        entry.demoted_until = Some(until);
        entry.quality_demotion = Some(why.clone());
        let demotion = Demotion {
            complexity,
            provider: provider.to_owned(),
            until,
            why,
        };
        let _ = self.demotions.send(demotion.clone());
        Some(demotion)
    }

    pub fn success(&self, complexity: Complexity, provider: &str, latency_ms: f64) {
        let mut map = self.lock();
        let entry = map.entry((complexity, provider.to_owned())).or_default();
        entry.successes += 1;
        entry.failures_in_a_row = 0;
        entry.total_latency_ms += latency_ms;
        if entry.quality_demotion.is_none() {
            // An answer lifts a demotion for errors; one for flawed answers runs its time.
            entry.demoted_until = None;
        }
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
        if let Some(why) = &entry.quality_demotion {
            return Some(format!(
                "{why} (until {})",
                crate::quota::tracker::clock(until)
            ));
        }
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
    fn four_flawed_answers_of_ten_take_a_target_off_that_class_with_the_evidence() {
        let outcomes = Outcomes::default();
        let mut told = outcomes.demotions();
        let now = Utc::now();
        let judge = |flaw| outcomes.judged(Complexity::Medium, "lmstudio", flaw, now);
        for flaw in [
            None,
            Some(Flaw::InvalidToolCall),
            None,
            Some(Flaw::InvalidToolCall),
            Some(Flaw::Empty),
        ] {
            assert_eq!(judge(flaw), None);
        }
        let demotion = judge(Some(Flaw::InvalidToolCall)).unwrap();
        assert_eq!(
            demotion.why,
            "lmstudio taken off medium work: 3 of its last 6 answers had invalid tool calls"
        );
        assert_eq!(told.try_recv().unwrap(), demotion);
        let why = outcomes
            .demoted(Complexity::Medium, "lmstudio", now)
            .unwrap();
        assert!(why.starts_with("lmstudio taken off medium work"), "{why}");
        assert!(outcomes
            .demoted(Complexity::Simple, "lmstudio", now)
            .is_none());
        // A success does not lift it; its time does, and it starts afresh.
        outcomes.success(Complexity::Medium, "lmstudio", 5.0);
        assert!(outcomes
            .demoted(Complexity::Medium, "lmstudio", now)
            .is_some());
        let later = now + QUALITY_DEMOTION + Duration::seconds(1);
        assert!(outcomes
            .demoted(Complexity::Medium, "lmstudio", later)
            .is_none());
        assert_eq!(
            outcomes.judged(Complexity::Medium, "lmstudio", Some(Flaw::Empty), later),
            None
        );
        assert_eq!(outcomes.rows()[0].outcome.recent_flawed, 1);
    }

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
