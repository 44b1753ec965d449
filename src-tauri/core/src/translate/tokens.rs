//! A local token estimate for `count_tokens` on targets that cannot count.
//!
//! Claude Code compacts its context when `count_tokens` says it is full, so the answer must
//! be honest and never 0 for a non-empty request. Without Claude's tokenizer this counts
//! the text and JSON that reach the model at ~3.5 bytes per token (English prose runs
//! ~4, code and JSON ~3), plus a few tokens per message and per tool.

use serde_json::Value;

const BYTES_PER_TOKEN: f64 = 3.5;
const PER_MESSAGE: u64 = 4;
const PER_TOOL: u64 = 12;

pub fn estimate(body: &Value) -> u64 {
    let mut bytes = 0usize;
    let mut overhead = 0u64;
    if let Some(system) = body.get("system") {
        bytes += content_bytes(system);
        overhead += PER_MESSAGE;
    }
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for message in messages {
            bytes += content_bytes(message.get("content").unwrap_or(&Value::Null));
            overhead += PER_MESSAGE;
        }
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        for tool in tools {
            bytes += tool.to_string().len();
            overhead += PER_TOOL;
        }
    }
    let tokens = (bytes as f64 / BYTES_PER_TOKEN).ceil() as u64 + overhead;
    tokens.max(1)
}

fn content_bytes(content: &Value) -> usize {
    match content {
        Value::String(s) => s.len(),
        Value::Array(blocks) => blocks.iter().map(block_bytes).sum(),
        Value::Null => 0,
        other => other.to_string().len(),
    }
}

fn block_bytes(block: &Value) -> usize {
    match block.get("type").and_then(Value::as_str) {
        Some("text") => block
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, str::len),
        Some("thinking") => block
            .get("thinking")
            .and_then(Value::as_str)
            .map_or(0, str::len),
        // An image costs about (width*height)/750 tokens; without decoding it, count a
        // typical screenshot's ~1,600 tokens.
        Some("image") => 1600 * BYTES_PER_TOKEN as usize,
        Some("tool_use") => block.get("input").map_or(0, |i| i.to_string().len()),
        Some("tool_result") => content_bytes(block.get("content").unwrap_or(&Value::Null)),
        _ => block.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn never_zero_and_grows_with_content() {
        let empty = json!({"messages": [{"role": "user", "content": ""}]});
        assert!(estimate(&empty) >= 1);
        let short = estimate(&json!({"messages": [{"role": "user", "content": "hello there"}]}));
        let long = estimate(
            &json!({"messages": [{"role": "user", "content": "hello there ".repeat(1000)}]}),
        );
        assert!(long > short * 100, "{short} {long}");
        // ~12,000 bytes of prose: about 3,400 tokens.
        assert!((3000..4000).contains(&long), "{long}");
    }
}
