//! What is Anthropic's alone, taken out before a request goes to any other server —
//! OpenAI-compatible ones and those speaking `/v1/messages` alike (LM Studio ≥ 0.4.1,
//! Ollama, llama.cpp). Each by a stated rule:
//!
//! - **The attribution line.** Claude Code puts `x-anthropic-billing-header: …` first in
//!   its system prompt and it changes from request to request, so a local server's prefix
//!   (KV) cache never hits. Anthropic needs it; nobody else does.
//! - **Fields beyond the Messages API's core** ([`CORE_FIELDS`]): `safeguards`,
//!   `context_management`, `output_config`'s effort, `diagnostics`, `mcp_servers`,
//!   `container` and whatever Anthropic adds next are dropped, named in the changes. The
//!   answer's format (`output_config.format`, a JSON schema: Claude Code's title chore)
//!   stays: any server can be asked for it.
//! - **Tools only Anthropic runs**: server tools (a versioned `type`, no schema:
//!   `web_search_20250305`, …) are omitted, and so are tools marked `defer_loading`
//!   (Claude Code's `DeferredToolPlaceholder`: on Anthropic they are hidden until a
//!   `tool_reference` loads them).
//! - **Blocks only Anthropic reads**: signed thinking blocks and `redacted_thinking`
//!   (opaque to anyone else), `tool_reference`s, server tool calls and their results.

use serde_json::{Map, Value};

/// The attribution line's prefix.
pub const ATTRIBUTION: &str = "x-anthropic-billing-header:";

/// The request fields every Messages-API server knows; the rest is Anthropic's.
pub const CORE_FIELDS: [&str; 13] = [
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
];

/// Content blocks any Messages-API server reads.
const CORE_BLOCKS: [&str; 6] = [
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
];

/// `body` without what is Anthropic's alone, and what was taken out; `None` when there
/// was nothing to take out.
pub fn strip(body: &Value) -> Option<(Value, Vec<String>)> {
    let object = body.as_object()?;
    let mut out = Map::new();
    let mut changes = Vec::new();
    let mut dropped_fields = Vec::new();
    for (key, value) in object {
        match key.as_str() {
            "system" => {
                let (system, removed) = without_attribution(value);
                if removed {
                    changes.push("attribution line removed from the system prompt".to_owned());
                }
                out.insert(key.clone(), system);
            }
            "tools" => {
                let (tools, omitted) = local_tools(value);
                changes.extend(omitted);
                out.insert(key.clone(), tools);
            }
            "messages" => {
                let (messages, dropped) = readable_messages(value);
                if dropped > 0 {
                    changes.push(format!("{dropped} blocks only Anthropic reads dropped"));
                }
                out.insert(key.clone(), messages);
            }
            known if CORE_FIELDS.contains(&known) => {
                out.insert(key.clone(), value.clone());
            }
            // The answer's format (a JSON schema) is the request's to keep; effort is not.
            "output_config" => match value.get("format") {
                Some(format) => {
                    out.insert(key.clone(), serde_json::json!({"format": format}));
                    if value.as_object().is_some_and(|o| o.len() > 1) {
                        dropped_fields.push("output_config.effort".to_owned());
                    }
                }
                None => dropped_fields.push(key.clone()),
            },
            other => dropped_fields.push(other.to_owned()),
        }
    }
    if !dropped_fields.is_empty() {
        changes.push(format!(
            "Anthropic-only fields dropped: {}",
            dropped_fields.join(", ")
        ));
    }
    (!changes.is_empty()).then_some((Value::Object(out), changes))
}

/// Whether a system text block (or a string's first line) is the attribution line.
fn is_attribution(text: &str) -> bool {
    text.trim_start().starts_with(ATTRIBUTION)
}

fn without_attribution(system: &Value) -> (Value, bool) {
    match system {
        Value::String(text) if is_attribution(text) => {
            let rest = text
                .trim_start()
                .split_once('\n')
                .map_or("", |(_, rest)| rest);
            (Value::String(rest.to_owned()), true)
        }
        Value::Array(blocks) => {
            let kept: Vec<Value> = blocks
                .iter()
                .filter(|b| {
                    !b.get("text")
                        .and_then(Value::as_str)
                        .is_some_and(is_attribution)
                })
                .cloned()
                .collect();
            let removed = kept.len() != blocks.len();
            (Value::Array(kept), removed)
        }
        other => (other.clone(), false),
    }
}

/// A tool only Anthropic can run: a server tool (a versioned `type` other than
/// `custom`), or one deferred until Anthropic's tool search loads it.
pub fn is_anthropic_tool(tool: &Value) -> bool {
    let typed = tool
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "custom");
    typed || tool.get("defer_loading") == Some(&Value::Bool(true))
}

fn local_tools(tools: &Value) -> (Value, Vec<String>) {
    let Some(list) = tools.as_array() else {
        return (tools.clone(), Vec::new());
    };
    let (kept, omitted): (Vec<&Value>, Vec<&Value>) =
        list.iter().partition(|t| !is_anthropic_tool(t));
    let mut changes = Vec::new();
    let servers: Vec<&str> = omitted
        .iter()
        .filter(|t| t.get("defer_loading") != Some(&Value::Bool(true)))
        .filter_map(|t| t.get("type").and_then(Value::as_str))
        .collect();
    if !servers.is_empty() {
        changes.push(format!(
            "{} omitted: only Anthropic runs its server tools",
            servers.join(", ")
        ));
    }
    let deferred = omitted.len() - servers.len();
    if deferred > 0 {
        changes.push(format!(
            "{deferred} deferred tools withheld (defer_loading)"
        ));
    }
    (Value::Array(kept.into_iter().cloned().collect()), changes)
}

fn readable_messages(messages: &Value) -> (Value, usize) {
    let Some(list) = messages.as_array() else {
        return (messages.clone(), 0);
    };
    let mut dropped = 0;
    let out = list
        .iter()
        .map(|message| {
            let Some(blocks) = message.get("content").and_then(Value::as_array) else {
                return message.clone();
            };
            let mut kept: Vec<Value> = Vec::new();
            for block in blocks {
                if readable(block) {
                    kept.push(without_references(block, &mut dropped));
                } else {
                    dropped += 1;
                }
            }
            let mut message = message.clone();
            message["content"] = if kept.is_empty() {
                Value::String(String::new())
            } else {
                Value::Array(kept)
            };
            message
        })
        .collect();
    (Value::Array(out), dropped)
}

fn readable(block: &Value) -> bool {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    let signed = kind == "thinking"
        && block
            .get("signature")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
    CORE_BLOCKS.contains(&kind) && !signed
}

/// A tool result without the `tool_reference`s inside it (Anthropic's tool search).
fn without_references(block: &Value, dropped: &mut usize) -> Value {
    let Some(items) = block.get("content").and_then(Value::as_array) else {
        return block.clone();
    };
    if block.get("type").and_then(Value::as_str) != Some("tool_result") {
        return block.clone();
    }
    let kept: Vec<Value> = items
        .iter()
        .filter(|item| {
            let keep = item.get("type").and_then(Value::as_str) != Some("tool_reference");
            *dropped += usize::from(!keep);
            keep
        })
        .cloned()
        .collect();
    let mut block = block.clone();
    block["content"] = Value::Array(kept);
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claude_codes_request_loses_what_only_anthropic_uses_and_nothing_else() {
        let body = json!({
            "model": "claude-opus-5-5", "max_tokens": 128000, "stream": true,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=sdk-cli; cch=2efee;"},
                {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}
            ],
            "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": []}, "output_config": {"effort": "medium"},
            "safeguards": [{"type": "dangerous_tool_use"}], "diagnostics": {},
            "tools": [
                {"name": "Bash", "input_schema": {"type": "object"}},
                {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}, "defer_loading": true},
                {"type": "web_search_20250305", "name": "web_search"}
            ],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "", "signature": "EqQB"},
                    {"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                    "content": [{"type": "tool_reference", "tool_name": "Grep"}]}]}
            ]
        });
        let (out, changes) = strip(&body).unwrap();
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}])
        );
        for gone in [
            "context_management",
            "output_config",
            "safeguards",
            "diagnostics",
        ] {
            assert!(out.get(gone).is_none(), "{gone}");
        }
        assert_eq!(out["thinking"], body["thinking"]);
        assert_eq!(
            out["tools"],
            json!([{"name": "Bash", "input_schema": {"type": "object"}}])
        );
        assert_eq!(
            out["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {}}])
        );
        assert_eq!(out["messages"][2]["content"][0]["content"], json!([]));
        let said = changes.join("; ");
        assert!(said.contains("web_search_20250305 omitted"), "{said}");
        assert!(said.contains("attribution line removed"), "{said}");
        assert_eq!(strip(&json!({"model": "m", "messages": []})), None);
        // A string system prompt loses its first line only.
        let (out, _) = strip(
            &json!({"system": "x-anthropic-billing-header: cc=1;\nBe brief.", "messages": []}),
        )
        .unwrap();
        assert_eq!(out["system"], "Be brief.");
    }
}
