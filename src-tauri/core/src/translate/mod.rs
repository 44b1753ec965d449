//! Anthropic Messages <-> OpenAI Chat Completions, in one place, and what other servers
//! must not receive ([`anthropic_only`]).
//!
//! [`request`] turns a Messages request into a Chat Completions request; [`response`]
//! turns a completion back into a Message; [`stream`] turns a completion stream into a
//! valid Anthropic event sequence however the backend fragments it.
//!
//! Imports `wire` only: pure functions over JSON and bytes, tested without a network.

pub mod anthropic_only;
#[cfg(test)]
mod properties;
pub mod request;
pub mod response;
mod schema;
pub mod stream;

/// Chat Completions `finish_reason` -> Messages `stop_reason`.
pub fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        _ if has_tool_calls => "tool_use",
        Some("length") => "max_tokens",
        // A tool-call finish with no call left standing: the answer ended.
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

/// The reasoning text of a message or a delta: `reasoning_content` (DeepSeek, Qwen, GLM,
/// vLLM, llama.cpp, LM Studio) or `reasoning` (OpenRouter, Ollama).
pub fn reasoning_of(message: &serde_json::Value) -> Option<&str> {
    message
        .get("reasoning_content")
        .and_then(serde_json::Value::as_str)
        .or_else(|| message.get("reasoning").and_then(serde_json::Value::as_str))
        .filter(|t| !t.is_empty())
}

/// Prompt tokens read from a cache: `prompt_tokens_details.cached_tokens` (OpenAI,
/// OpenRouter, vLLM), `prompt_cache_hit_tokens` (DeepSeek), `cache_read_input_tokens`.
pub fn cached_tokens(usage: &serde_json::Value) -> Option<u64> {
    usage
        .get("prompt_tokens_details")
        .and_then(|d| d.get("cached_tokens"))
        .or_else(|| usage.get("prompt_cache_hit_tokens"))
        .or_else(|| usage.get("cache_read_input_tokens"))
        .and_then(serde_json::Value::as_u64)
}
