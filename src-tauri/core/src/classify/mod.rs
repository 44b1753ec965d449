//! Task complexity: how demanding a request is, which selects the matrix column.
//!
//! An explicit `x-pai-complexity` header wins. Claude Code's side requests are what they
//! are: its probes, titles, summaries and web searches simple, its auto-mode security
//! monitor complex. Otherwise what counts is the task — the latest human prompt
//! ([`facts`]): what kind of work it asks for, each kind a keyword list of the config
//! ([`phrases`]) with a weight, how far it reaches (across the code), how long it is.
//! The model asked for is a weak signal at most (it is Claude Code's setting, not the
//! task's), and thinking and tools, on for every Claude Code request, say nothing by
//! default. Every decision carries its reason ("'summarize': simple work").
//!
//! Imports: `config` (the rules), `types`, `wire`; nothing that routes or sends.

mod facts;
mod phrases;

use serde::Serialize;

pub use facts::{RequestFacts, Side};
pub use phrases::{Found, Phrases};

use crate::config::ClassifyRules;
use crate::types::Complexity;

/// A complexity and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub complexity: Complexity,
    pub score: f64,
    /// "'design': complex work + opus asked"
    pub reason: String,
}

/// The rules of one config, compiled.
pub struct Classifier {
    rules: ClassifyRules,
    phrases: Phrases,
}

impl Classifier {
    pub fn new(rules: &ClassifyRules) -> Classifier {
        Classifier {
            phrases: Phrases::new(rules),
            rules: rules.clone(),
        }
    }

    /// Classifies a request. `explicit` is the `x-pai-complexity` header, if any.
    pub fn classify(&self, facts: &RequestFacts, explicit: Option<&str>) -> Classification {
        if let Some(complexity) = explicit.and_then(|e| e.trim().parse::<Complexity>().ok()) {
            return Classification {
                complexity,
                score: 0.0,
                reason: format!("x-pai-complexity: {}", complexity.name()),
            };
        }
        if let Some(side) = facts.side {
            let (complexity, score) = match side {
                Side::SecurityMonitor => (Complexity::Complex, f64::INFINITY),
                _ => (Complexity::Simple, f64::NEG_INFINITY),
            };
            return Classification {
                complexity,
                score,
                reason: format!("{}: {}", side.describe(), complexity.name()),
            };
        }
        let rules = &self.rules;
        let w = &rules.weights;
        let mut score = 0.0;
        let mut reasons: Vec<String> = Vec::new();
        let mut add = |weight: f64, reason: String| {
            if weight != 0.0 {
                score += weight;
                reasons.push(reason);
            }
        };
        let found = self.phrases.find(&facts.latest_user_text);
        let broad = found.scope.is_some();
        if let Some(word) = &found.complex {
            add(w.complex_keyword, format!("'{word}': complex work"));
        }
        if let Some(word) = &found.medium {
            add(w.medium_keyword, format!("'{word}': medium work"));
        }
        // A rename or a reformat across the code is not a small edit.
        if let Some(word) = found.simple.as_ref().filter(|_| !broad) {
            add(w.simple_keyword, format!("'{word}': simple work"));
        }
        let asks_for_work = found.complex.is_some() || found.medium.is_some();
        if let Some(word) = found.question.as_ref().filter(|_| !asks_for_work && !broad) {
            add(w.question, format!("'{word}': a question"));
        }
        if let Some(word) = &found.scope {
            add(w.broad_scope, format!("'{word}': reaches across the code"));
        }
        if facts.prompt_chars > rules.long_prompt_chars {
            add(
                w.long_prompt,
                format!("a long task ({} characters)", facts.prompt_chars),
            );
        }
        let model = facts.model.to_ascii_lowercase();
        if model.contains("haiku") {
            add(w.haiku_model, "haiku asked (weak)".into());
        } else if model.contains("opus") {
            add(w.opus_model, "opus asked (weak)".into());
        }
        if facts.thinking {
            add(w.thinking, "thinking on".into());
        }
        if let Some(budget) = facts
            .thinking_budget
            .filter(|b| *b >= rules.deep_thinking_budget)
        {
            add(w.deep_thinking, format!("thinking budget {budget}"));
        }
        if facts.input_tokens >= rules.large_input_tokens {
            add(
                w.large_input,
                format!("~{}k input tokens", facts.input_tokens / 1000),
            );
        } else if facts.input_tokens < rules.small_input_tokens && facts.tools == 0 {
            add(w.small_input, "small input".into());
        }
        if facts.tools >= 10 {
            add(w.many_tools, format!("{} tools", facts.tools));
        }
        let complexity = if score <= rules.simple_at_most {
            Complexity::Simple
        } else if score >= rules.complex_at_least {
            Complexity::Complex
        } else {
            Complexity::Medium
        };
        let reason = if reasons.is_empty() {
            format!("no strong signal: {}", complexity.name())
        } else {
            format!("{}: {}", reasons.join(" + "), complexity.name())
        };
        Classification {
            complexity,
            score,
            reason,
        }
    }
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
