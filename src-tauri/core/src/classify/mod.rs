//! Task complexity: how demanding a request is, which selects the matrix column.
//!
//! An explicit `x-pai-complexity` header wins. Otherwise signals from the request add up
//! to a score, each a rule with a configurable weight: the requested model's tier (Claude
//! Code sends background chores to Haiku), extended thinking, input size, tools, and
//! keywords of the latest user text. Start-up probes and "Warmup" requests are simple.
//! Every decision carries its reason.
//!
//! Imports: `config` (the rules), `types`, `wire`; nothing that routes or sends.

mod facts;

use serde::Serialize;

pub use facts::RequestFacts;

use crate::config::ClassifyRules;
use crate::types::Complexity;

/// A complexity and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub complexity: Complexity,
    pub score: f64,
    /// "opus requested + 'architecture' in prompt"
    pub reason: String,
}

/// Classifies a request. `explicit` is the `x-pai-complexity` header, if any.
pub fn classify(
    facts: &RequestFacts,
    explicit: Option<&str>,
    rules: &ClassifyRules,
) -> Classification {
    if let Some(complexity) = explicit.and_then(|e| e.trim().parse::<Complexity>().ok()) {
        return Classification {
            complexity,
            score: 0.0,
            reason: format!("x-pai-complexity: {}", complexity.name()),
        };
    }
    if facts.is_probe {
        return Classification {
            complexity: Complexity::Simple,
            score: f64::NEG_INFINITY,
            reason: "start-up probe / warmup".to_owned(),
        };
    }
    let w = &rules.weights;
    let mut score = 0.0;
    let mut reasons: Vec<String> = Vec::new();
    let mut add = |weight: f64, reason: String| {
        if weight != 0.0 {
            score += weight;
            reasons.push(reason);
        }
    };
    let model = facts.model.to_ascii_lowercase();
    if model.contains("haiku") {
        add(w.haiku_model, "haiku requested".into());
    } else if model.contains("opus") {
        add(w.opus_model, "opus requested".into());
    }
    if let Some(budget) = facts.thinking_budget {
        add(w.thinking, "extended thinking".into());
        if budget >= rules.deep_thinking_budget {
            add(w.deep_thinking, format!("thinking budget {budget}"));
        }
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
    let text = &facts.latest_user_text;
    if let Some(word) = rules
        .complex_keywords
        .iter()
        .find(|k| text.contains(k.as_str()))
    {
        add(w.complex_keyword, format!("'{}' in prompt", word.trim()));
    } else if let Some(word) = rules
        .simple_keywords
        .iter()
        .find(|k| text.contains(k.as_str()))
    {
        add(w.simple_keyword, format!("'{}' in prompt", word.trim()));
    }
    let complexity = if score <= rules.simple_at_most {
        Complexity::Simple
    } else if score >= rules.complex_at_least {
        Complexity::Complex
    } else {
        Complexity::Medium
    };
    let reason = if reasons.is_empty() {
        "no strong signal".to_owned()
    } else {
        reasons.join(" + ")
    };
    Classification {
        complexity,
        score,
        reason,
    }
}

#[cfg(test)]
mod tests;
