//! Anthropic Messages <-> OpenAI Chat Completions, in one place, and what other servers
//! must not receive ([`anthropic_only`]).
//!
//! [`request`] turns a Messages request into a Chat Completions request; [`response`]
//! turns a completion back into a Message; [`stream`] turns a completion stream into a
//! valid Anthropic event sequence however the backend fragments it. [`tokens`] estimates
//! `count_tokens` for targets that cannot count.
//!
//! Imports `wire` only: pure functions over JSON and bytes, tested without a network.

pub mod anthropic_only;
#[cfg(test)]
mod properties;
pub mod request;
pub mod response;
mod schema;
pub mod stream;
pub mod tokens;

/// Chat Completions `finish_reason` -> Messages `stop_reason`.
pub fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        _ if has_tool_calls => "tool_use",
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// A tool-call id Anthropic accepts (`^[a-zA-Z0-9_-]+$`), stable for the same input so the
/// follow-up `tool_result` maps back to the same call.
pub fn tool_id(openai_id: Option<&str>, message_id: &str, index: usize) -> String {
    match openai_id.filter(|id| !id.is_empty()) {
        Some(id) => id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect(),
        None => format!("toolu_{message_id}_{index}"),
    }
}
