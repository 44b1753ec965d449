//! The facts of a request that classification looks at, read from the borrowed parse.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::types::ClaudeOnly;
use crate::wire::summary::MessagesSummary;

/// How much of the latest user text is searched for keywords.
const TEXT_LIMIT: usize = 4000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    pub model: String,
    pub max_tokens: Option<u64>,
    /// The thinking budget when thinking is on (`adaptive` counts as 0 budget).
    pub thinking_budget: Option<u64>,
    pub input_tokens: u64,
    pub tools: usize,
    /// The last user turn carries tool results: the agent is mid-loop.
    pub in_tool_loop: bool,
    /// Lower-cased latest user prompt, without Claude Code's `<system-reminder>` blocks.
    pub latest_user_text: String,
    /// Claude Code's `max_tokens: 1` quota probe or a "Warmup" request.
    pub is_probe: bool,
    pub has_images: bool,
    /// What in it only Anthropic can do, if anything.
    pub claude_only: Option<ClaudeOnly>,
}

/// How Claude Code's auto-mode security monitor begins its system prompt.
const SECURITY_MONITOR: &str = "You are a security monitor for autonomous AI coding agents";

/// A tool's head: a server tool has a versioned `type` (and no schema).
#[derive(Deserialize)]
struct ToolHead<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    role: &'a str,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: Option<u64>,
}

impl RequestFacts {
    pub fn from_summary(summary: &MessagesSummary<'_>, body_len: usize) -> RequestFacts {
        let messages: Vec<Message<'_>> =
            serde_json::from_str(summary.messages.get()).unwrap_or_default();
        let tool_heads = summary
            .tools
            .and_then(|t| serde_json::from_str::<Vec<ToolHead<'_>>>(t.get()).ok())
            .unwrap_or_default();
        let tools = tool_heads.len();
        let server_tool = tool_heads
            .iter()
            .any(|t| t.kind.as_deref().is_some_and(|k| k != "custom"));
        let claude_only = if server_tool {
            Some(ClaudeOnly::ServerTool)
        } else if summary
            .system
            .is_some_and(|s| s.get().contains(SECURITY_MONITOR))
        {
            Some(ClaudeOnly::SecurityMonitor)
        } else if summary.safeguards.is_some() {
            Some(ClaudeOnly::AutoMode)
        } else if summary.mcp_servers.is_some() {
            Some(ClaudeOnly::McpServers)
        } else if summary.container.is_some() {
            Some(ClaudeOnly::Container)
        } else if summary.messages.get().contains("\"tool_reference\"") {
            Some(ClaudeOnly::ToolReference)
        } else {
            None
        };
        let thinking_budget = summary
            .thinking
            .and_then(|t| serde_json::from_str::<Thinking>(t.get()).ok())
            .and_then(|t| match t.kind.as_str() {
                "enabled" => Some(t.budget_tokens.unwrap_or(0)),
                "adaptive" => Some(0),
                _ => None,
            });
        let last_user = messages.iter().rev().find(|m| m.role == "user");
        let in_tool_loop = last_user.is_some_and(|m| m.content.get().contains("\"tool_result\""));
        let has_images = messages
            .iter()
            .any(|m| m.role == "user" && m.content.get().contains("\"image\""));
        let latest_user_text = messages
            .iter()
            .rev()
            .filter(|m| m.role == "user")
            .map(|m| user_text(m.content))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        let is_probe = summary.max_tokens == Some(1)
            || (messages.len() == 1 && latest_user_text.trim() == "warmup");
        RequestFacts {
            model: summary.model().unwrap_or_default().to_owned(),
            max_tokens: summary.max_tokens,
            thinking_budget,
            // Without a tokenizer: ~3.5 bytes per token of JSON.
            input_tokens: (body_len as f64 / 3.5) as u64,
            tools,
            in_tool_loop,
            latest_user_text,
            is_probe,
            has_images,
            claude_only,
        }
    }
}

fn user_text(content: &RawValue) -> String {
    let mut text = match serde_json::from_str::<String>(content.get()) {
        Ok(s) => s,
        Err(_) => serde_json::from_str::<Vec<Block<'_>>>(content.get())
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text)
            .filter(|t| !t.trim_start().starts_with("<system-reminder>"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    if text.len() > TEXT_LIMIT {
        let mut cut = TEXT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text.to_lowercase()
}
