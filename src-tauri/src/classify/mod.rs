//! Task complexity: how demanding a request is, which selects the matrix column.
//!
//! An explicit `x-pai-complexity` header wins. Otherwise signals from the request add up
//! to a score, each a rule with a configurable weight: the requested model's tier (Claude
//! Code sends background chores to Haiku), extended thinking, input size, tools, and
//! keywords of the latest user text. Start-up probes and "Warmup" requests are simple.
//! Every decision carries its reason.

mod facts;

use serde::{Deserialize, Serialize};

pub use facts::RequestFacts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Complexity {
    Simple = 0,
    Medium = 1,
    Complex = 2,
}

impl Complexity {
    pub const ALL: [Complexity; 3] = [Complexity::Simple, Complexity::Medium, Complexity::Complex];

    pub fn name(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Medium => "medium",
            Complexity::Complex => "complex",
        }
    }

    pub fn from_name(name: &str) -> Option<Complexity> {
        Complexity::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The rules and their weights (`[classify]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyRules {
    /// A score at or below this is simple.
    pub simple_at_most: f64,
    /// A score at or above this is complex.
    pub complex_at_least: f64,
    pub weights: Weights,
    /// Input above this many tokens counts as large.
    pub large_input_tokens: u64,
    /// Input below this many tokens (and no tools) counts as small.
    pub small_input_tokens: u64,
    /// A thinking budget at least this large counts as deep thinking.
    pub deep_thinking_budget: u64,
    pub complex_keywords: Vec<String>,
    pub simple_keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    pub haiku_model: f64,
    pub opus_model: f64,
    pub thinking: f64,
    pub deep_thinking: f64,
    pub large_input: f64,
    pub small_input: f64,
    pub many_tools: f64,
    pub complex_keyword: f64,
    pub simple_keyword: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            haiku_model: -3.0,
            opus_model: 2.0,
            thinking: 1.0,
            deep_thinking: 1.0,
            large_input: 1.0,
            small_input: -1.0,
            many_tools: 0.5,
            complex_keyword: 2.0,
            simple_keyword: -2.0,
        }
    }
}

impl Default for ClassifyRules {
    fn default() -> Self {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect();
        ClassifyRules {
            simple_at_most: -1.5,
            complex_at_least: 2.0,
            weights: Weights::default(),
            large_input_tokens: 60_000,
            small_input_tokens: 2_000,
            deep_thinking_budget: 16_000,
            complex_keywords: words(&[
                "architecture",
                "architect",
                "design",
                "security",
                "vulnerab",
                "refactor",
                "across files",
                "multi-file",
                "migrate",
                "migration",
                "concurrency",
                "race condition",
                "deadlock",
                "algorithm",
                "novel",
                "prove",
            ]),
            simple_keywords: words(&[
                "format",
                "summarize",
                "summarise",
                "summary",
                "read ",
                "look up",
                "lookup",
                "rename",
                "typo",
                "title",
                "translate",
                "list ",
                "what is",
            ]),
        }
    }
}

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
    if let Some(complexity) = explicit.and_then(|e| Complexity::from_name(e.trim())) {
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
