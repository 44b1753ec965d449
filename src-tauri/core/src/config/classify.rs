//! `[classify]`: the classification rules and their weights. The classifier applies
//! them; their settings live here with the rest of the config.
//!
//! A keyword is a word or phrase matched whole (`"design"` is not found in `"designer"`);
//! one ending in `*` matches as a word's beginning (`"summar*"`: summary, summarize).

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
    /// A prompt longer than this (characters) counts as a long task description.
    pub long_prompt_chars: usize,
    /// Work the seed calls complex: architecture, security analysis, novel problems.
    pub complex_keywords: Vec<String>,
    /// Work it calls medium: writing code, fixing bugs, refactoring suggestions.
    pub medium_keywords: Vec<String>,
    /// Work it calls simple: summaries, lookups, formatting, pattern matching.
    pub simple_keywords: Vec<String>,
    /// Questions that are simple unless the prompt also asks for work.
    pub question_keywords: Vec<String>,
    /// A change that reaches across the code (multi-file work).
    pub scope_keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// The model asked for is Claude Code's setting, not the task's: a weak signal.
    pub haiku_model: f64,
    pub opus_model: f64,
    /// Thinking is on for every Claude Code request: no signal by default.
    pub thinking: f64,
    /// A large thinking budget the client set itself.
    pub deep_thinking: f64,
    pub large_input: f64,
    pub small_input: f64,
    pub many_tools: f64,
    pub complex_keyword: f64,
    pub medium_keyword: f64,
    pub simple_keyword: f64,
    pub question: f64,
    pub broad_scope: f64,
    pub long_prompt: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            haiku_model: -0.5,
            opus_model: 0.25,
            thinking: 0.0,
            deep_thinking: 0.5,
            large_input: 0.5,
            small_input: 0.0,
            many_tools: 0.0,
            complex_keyword: 3.0,
            medium_keyword: 1.0,
            simple_keyword: -2.5,
            question: -1.5,
            broad_scope: 3.0,
            long_prompt: 1.0,
        }
    }
}

impl Default for ClassifyRules {
    fn default() -> Self {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect();
        ClassifyRules {
            simple_at_most: -1.0,
            complex_at_least: 2.5,
            weights: Weights::default(),
            large_input_tokens: 60_000,
            small_input_tokens: 2_000,
            deep_thinking_budget: 16_000,
            long_prompt_chars: 1_500,
            complex_keywords: words(&[
                "architecture",
                "architect*",
                "design",
                "redesign*",
                "system design",
                "from scratch",
                "multi-file",
                "migrat*",
                "restructur*",
                "overhaul*",
                "rewrite the",
                "split the",
                "monolith",
                "microservice*",
                "port the",
                "security",
                "secure",
                "vulnerab*",
                "threat model",
                "audit*",
                "exploit*",
                "harden*",
                "supply-chain",
                "memory safety",
                "encryption",
                "sso",
                "saml",
                "oidc",
                "race condition*",
                "deadlock*",
                "concurren*",
                "thread-safe",
                "lock-free",
                "distributed",
                "consensus",
                "algorithm",
                "prove",
                "novel",
                "invent*",
                "come up with",
                "end-to-end",
                "scale",
                "scalab*",
                "graphql",
                "event sourcing",
                "query planner",
                "garbage collector",
                "interpreter",
                "sandbox*",
                "internationali*",
                "incremental",
                "dependency injection",
                "state management",
                "permission model",
                "data model",
                "database schema",
                "caching strategy",
                "hot paths",
            ]),
            medium_keywords: words(&[
                "implement*",
                "write a",
                "write an",
                "write unit",
                "write tests",
                "unit test*",
                "add",
                "create*",
                "generat*",
                "fix*",
                "bug*",
                "debug*",
                "fail*",
                "error*",
                "exception",
                "crash*",
                "why",
                "broken",
                "hang*",
                "leak*",
                "wrong",
                "flaky",
                "failing test",
                "refactor*",
                "suggest*",
                "improv*",
                "review*",
                "simplif*",
                "extract*",
                "replace*",
                "optimi*",
                "make this",
                "make the",
                "convert*",
                "handle*",
                "update*",
                "better way",
                "readable",
                "validation",
                "endpoint",
                "dockerfile",
                "docstring*",
            ]),
            simple_keywords: words(&[
                "hi",
                "hello",
                "hey",
                "thanks",
                "thank you",
                "summar*",
                "typo*",
                "spelling",
                "rename",
                "format this",
                "format the code",
                "format the file",
                "reformat*",
                "fmt",
                "indent*",
                "prettif*",
                "sort the imports",
                "tabs to spaces",
                "blank line",
                "translat*",
                "look up",
                "lookup",
                "docs",
                "documentation",
                "list",
                "show",
                "grep",
                "search for",
                "count",
                "how many",
                "where is",
                "which file",
                "print",
                "title",
            ]),
            question_keywords: words(&[
                "what",
                "what's",
                "which",
                "where",
                "how do i",
                "how do we",
                "explain",
                "tell me",
                "is there",
                "read",
                "open",
                "find",
                "does",
            ]),
            scope_keywords: words(&[
                "across",
                "throughout",
                "entire",
                "whole codebase",
                "whole project",
                "whole repo",
                "all files",
                "all the files",
                "every file",
                "every reference",
                "every page",
                "every place",
                "everywhere",
                "codebase-wide",
            ]),
        }
    }
}
