//! `[classify]`: the classification rules and their weights. The classifier applies
//! them; their settings live here with the rest of the config.

use serde::{Deserialize, Serialize};

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
