//! What each Claude model accepts, row by row, each row naming the document it comes
//! from. The proxy applies a row only to what it changes itself (another model than the
//! client asked for, a conversation that moved between models): a request it passes on
//! as the client made it stays byte-exact.

use crate::models::{Family, Model, Version};

/// The rules of one model generation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// `thinking.type` `disabled`, or `enabled` with a budget, is a 400: omit thinking or
    /// send `adaptive`; effort is the control.
    pub adaptive_thinking_only: bool,
    /// `tool_choice` `any` or `tool` (forced tool use) is a 400.
    pub no_forced_tool_use: bool,
    /// Non-default `temperature`, `top_p`, `top_k` are not supported.
    pub no_sampling_parameters: bool,
    /// A final assistant turn (prefill) is not supported.
    pub no_prefill: bool,
    /// Where this row comes from.
    pub source: &'static str,
}

/// Models before the rows below: everything goes.
const OPEN: Rules = Rules {
    adaptive_thinking_only: false,
    no_forced_tool_use: false,
    no_sampling_parameters: false,
    no_prefill: false,
    source: "the Messages API reference (no model-specific rule)",
};

/// The table: a family from a version on. The newest matching row wins.
const TABLE: &[(Family, Version, Rules)] = &[
    (
        Family::Opus,
        Version::new(5, 0),
        Rules {
            no_prefill: true,
            source: "Anthropic, \"What's new in Claude Opus 5\" (a final assistant turn is not supported)",
            ..OPEN
        },
    ),
    (
        Family::Opus,
        Version::new(5, 5),
        Rules {
            adaptive_thinking_only: true,
            no_forced_tool_use: true,
            no_sampling_parameters: true,
            no_prefill: true,
            source: "Anthropic, \"What's new in Claude Opus 5.5\": thinking can't be disabled, forced tool use returns an error, thinking blocks are tied to the model",
        },
    ),
    (
        Family::Sonnet,
        Version::new(5, 5),
        Rules {
            adaptive_thinking_only: true,
            no_forced_tool_use: true,
            no_sampling_parameters: true,
            no_prefill: true,
            source: "Anthropic, Sonnet 5.5 migration guide (the Claude 5.5 changes: adaptive thinking only, no sampling parameters or prefill)",
        },
    ),
    (
        Family::Haiku,
        Version::new(5, 5),
        Rules {
            adaptive_thinking_only: true,
            no_forced_tool_use: true,
            no_sampling_parameters: true,
            no_prefill: true,
            source: "Anthropic, Haiku 5.5 migration guide (the Claude 5.5 changes: adaptive thinking only, no sampling parameters or prefill)",
        },
    ),
    (
        Family::Fable,
        Version::new(5, 1),
        Rules {
            adaptive_thinking_only: true,
            no_forced_tool_use: true,
            no_sampling_parameters: true,
            no_prefill: true,
            source: "Anthropic, \"What's new in Claude Fable 5.1\" (the first three Opus 5.5 changes arrived with it)",
        },
    ),
];

/// The rules for `model`; an id the table does not know gets none.
pub fn for_model(model: &str) -> Rules {
    let Some(Model {
        family,
        version: Some(version),
    }) = Model::parse(model)
    else {
        return OPEN;
    };
    TABLE
        .iter()
        .filter(|(f, from, _)| *f == family && version >= *from)
        .max_by_key(|(_, from, _)| *from)
        .map_or(OPEN, |(_, _, rules)| *rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_5_5_generation_and_fable_have_the_strict_rules_older_models_do_not() {
        for strict in [
            "claude-opus-5-5",
            "claude-sonnet-5-5",
            "claude-haiku-5-5",
            "claude-fable-5-2",
            "claude-fable-5-1",
        ] {
            let rules = for_model(strict);
            assert!(
                rules.adaptive_thinking_only && rules.no_forced_tool_use,
                "{strict}"
            );
        }
        for open in [
            "claude-opus-4-8",
            "claude-sonnet-5",
            "claude-haiku-4-5-20251001",
            "local",
        ] {
            assert!(!for_model(open).adaptive_thinking_only, "{open}");
        }
        assert!(for_model("claude-opus-5").no_prefill);
        assert!(!for_model("claude-opus-5").adaptive_thinking_only);
    }
}
