//! What the proxy knows of the Messages API, and what in a request it has never seen.
//!
//! Claude Code adds request fields, betas, block and tool types every few weeks. A
//! request to Anthropic passes with all of it unchanged; other targets get only what the
//! API's core defines (see `translate::anthropic_only`); and whatever is new is reported
//! once — the log, `/health` (`unknown_features`), `doctor` — so the user, and we, learn
//! of it.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Request fields the proxy knows: the Messages API reference, and what Claude Code
/// sends (2.1.332: `context_management`, `output_config`, `safeguards`, `diagnostics`).
pub const KNOWN_FIELDS: [&str; 20] = [
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
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_config",
    "safeguards",
    "diagnostics",
];

/// Content block types the proxy knows.
pub const KNOWN_BLOCKS: [&str; 17] = [
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "tool_reference",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
];

/// Tool types the proxy knows, by prefix (their versions change: `web_search_20250305`).
pub const KNOWN_TOOL_TYPES: [&str; 10] = [
    "custom",
    "web_search_",
    "web_fetch_",
    "code_execution_",
    "bash_",
    "text_editor_",
    "computer_",
    "memory_",
    "tool_search_tool_",
    "mcp_toolset",
];

/// Betas the proxy knows (`anthropic-beta`): those Claude Code sends today, and older ones.
pub const KNOWN_BETAS: [&str; 24] = [
    "claude-code-20250219",
    "oauth-2025-04-20",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "per-turn-control-2026-07-01",
    "mid-conversation-tool-changes-2026-07-01",
    "thinking-token-count-2026-05-13",
    "advanced-tool-use-2025-11-20",
    "effort-2025-11-24",
    "dangerous-tool-use-2026-09-03",
    "afk-mode-2026-01-31",
    "prompt-caching-scope-2026-01-05",
    "thinking-binding-controls-2026-08-01",
    "cache-diagnosis-2026-04-07",
    "redact-thinking-2026-02-12",
    "structured-outputs-2025-12-15",
    "fine-grained-tool-streaming-2025-05-14",
    "context-1m-2025-08-07",
    "prompt-caching-2024-07-31",
    "token-efficient-tools-2025-02-19",
    "files-api-2025-04-14",
    "web-fetch-2025-09-10",
    "code-execution-2025-08-25",
    "mcp-client-2025-04-04",
];

/// What kind of thing a feature is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Field,
    Block,
    Tool,
    Beta,
}

/// Something in a request the proxy has never seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Feature {
    pub kind: Kind,
    pub name: String,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    /// A tool result's own blocks.
    #[serde(borrow, default)]
    content: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
    #[serde(borrow, default)]
    tools: Vec<Typed<'a>>,
}

/// What in this request (its body and `anthropic-beta`) the proxy does not know. Reads
/// the top-level fields, the tools, and the blocks of the last two messages (each turn's
/// new content: the earlier ones were read when they were new).
pub fn unknown(body: &[u8], betas: Option<&str>) -> Vec<Feature> {
    let mut found = Vec::new();
    let mut add = |kind: Kind, name: &str| {
        let feature = Feature {
            kind,
            name: name.chars().take(80).collect(),
        };
        if !found.contains(&feature) {
            found.push(feature);
        }
    };
    if let Ok(fields) = serde_json::from_slice::<BTreeMap<&str, IgnoredAny>>(body) {
        for field in fields.keys().filter(|f| !KNOWN_FIELDS.contains(f)) {
            add(Kind::Field, field);
        }
    }
    if let Ok(top) = serde_json::from_slice::<Top<'_>>(body) {
        for tool in &top.tools {
            let kind = tool.kind.as_deref().unwrap_or("custom");
            if !KNOWN_TOOL_TYPES.iter().any(|k| kind.starts_with(k)) {
                add(Kind::Tool, kind);
            }
        }
        let recent = top.messages.iter().rev().take(2);
        for content in recent.filter_map(|m| m.content) {
            for block in serde_json::from_str::<Vec<Typed<'_>>>(content.get()).unwrap_or_default() {
                let inner = block
                    .content
                    .and_then(|c| serde_json::from_str::<Vec<Typed<'_>>>(c.get()).ok())
                    .unwrap_or_default();
                for kind in std::iter::once(&block)
                    .chain(&inner)
                    .filter_map(|b| b.kind.as_deref())
                {
                    if !KNOWN_BLOCKS.contains(&kind) {
                        add(Kind::Block, kind);
                    }
                }
            }
        }
    }
    for beta in betas.unwrap_or("").split(',').map(str::trim) {
        if !beta.is_empty() && !KNOWN_BETAS.contains(&beta) {
            add(Kind::Beta, beta);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_claude_code_sends_today_is_known_and_anything_new_is_named() {
        for name in ["main", "auto-mode", "websearch", "first-party", "title"] {
            let path = format!(
                "{}/../../tests/fixtures/claude-code-2.1.332-{name}-request.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let fixture: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let body = serde_json::to_vec(&fixture["body"]).unwrap();
            let betas = fixture["headers"]["anthropic-beta"].as_str();
            assert_eq!(unknown(&body, betas), [], "{name}");
        }
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"hologram","x":1},
            {"type":"tool_result","tool_use_id":"t","content":[{"type":"scent"}]}]}],
            "tools":[{"type":"teleport_20270101","name":"t"}],"moods":{}}"#;
        let found = unknown(body, Some("claude-code-20250219, warp-drive-2027-01-01"));
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "moods",
                "teleport_20270101",
                "hologram",
                "scent",
                "warp-drive-2027-01-01"
            ]
        );
    }
}
