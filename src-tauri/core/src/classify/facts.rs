//! The facts of a request that classification looks at, read from the borrowed parse:
//! above all the latest human prompt — not a `tool_result`, not Claude Code's
//! `<system-reminder>` blocks, not the environment message it injects — and whether the
//! request is one of Claude Code's own side requests.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::types::ClaudeOnly;
use crate::wire::summary::MessagesSummary;

/// How much of the latest prompt is read.
const TEXT_LIMIT: usize = 4000;

/// How Claude Code's auto-mode security monitor begins its system prompt.
const SECURITY_MONITOR: &str = "You are a security monitor for autonomous AI coding agents";
/// How its title chore begins (2.1.332).
const TITLE_CHORE: &str = "You are naming a coding session";
/// What its compaction request asks.
const COMPACTION: &str = "create a detailed summary of the conversation";
/// How its WebSearch tool's request begins.
const WEB_SEARCH: &str = "perform a web search for the query";

/// One of Claude Code's own requests beside the main loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `max_tokens: 1` quota probe, a "Warmup".
    Probe,
    /// A session title.
    Title,
    /// Compaction: a summary of the conversation so far.
    Summary,
    /// The request its WebSearch tool sends.
    WebSearch,
    /// Auto mode's security monitor (older Claude Code).
    SecurityMonitor,
}

impl Side {
    pub fn describe(self) -> &'static str {
        match self {
            Side::Probe => "start-up probe / warmup",
            Side::Title => "Claude Code's title chore",
            Side::Summary => "Claude Code's conversation summary",
            Side::WebSearch => "Claude Code's web search request",
            Side::SecurityMonitor => "auto mode's security monitor",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    pub model: String,
    pub max_tokens: Option<u64>,
    /// The thinking budget the client set (`enabled`); `adaptive` sets none.
    pub thinking_budget: Option<u64>,
    /// Whether thinking is on (`enabled` or `adaptive`).
    pub thinking: bool,
    pub input_tokens: u64,
    pub tools: usize,
    /// The last user turn carries tool results: the agent is mid-loop.
    pub in_tool_loop: bool,
    /// The tool calls those results answer (their `tool_use_id`s).
    pub answered_tool_calls: Vec<String>,
    /// Those whose result is an error (`is_error`).
    pub failed_tool_calls: Vec<String>,
    /// The turn this request asks for: the conversation's length and its last message
    /// (the same turn sent again has the same).
    pub turn: u64,
    /// The latest human prompt, lower-cased, without Claude Code's reminders.
    pub latest_user_text: String,
    /// Its length before it was cut to what is read.
    pub prompt_chars: usize,
    /// One of Claude Code's side requests, if it is one.
    pub side: Option<Side>,
    pub has_images: bool,
    /// What in it only Anthropic can do, if anything.
    pub claude_only: Option<ClaudeOnly>,
}

impl RequestFacts {
    /// Claude Code's `max_tokens: 1` quota probe or a "Warmup" request.
    pub fn is_probe(&self) -> bool {
        self.side == Some(Side::Probe)
    }
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
struct ToolResult {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    is_error: bool,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    budget_tokens: Option<u64>,
}

/// A tool's head: a server tool has a versioned `type` (and no schema).
#[derive(Deserialize)]
struct ToolHead<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

impl RequestFacts {
    /// `body`: the bytes `summary` was read from.
    pub fn from_summary(summary: &MessagesSummary<'_>, body: &[u8]) -> RequestFacts {
        let messages: Vec<Message<'_>> =
            serde_json::from_str(summary.messages.get()).unwrap_or_default();
        let tool_heads = summary
            .tools
            .and_then(|t| serde_json::from_str::<Vec<ToolHead<'_>>>(t.get()).ok())
            .unwrap_or_default();
        let tools = tool_heads.len();
        let tool_types: Vec<&str> = tool_heads
            .iter()
            .filter_map(|t| t.kind.as_deref())
            .collect();
        let server_tool = tool_types.iter().any(|k| *k != "custom");
        let thinking = summary
            .thinking
            .and_then(|t| serde_json::from_str::<Thinking>(t.get()).ok());
        let thinking_budget = thinking
            .as_ref()
            .filter(|t| t.kind == "enabled")
            .map(|t| t.budget_tokens.unwrap_or(0));
        let thinking = thinking.is_some_and(|t| matches!(t.kind.as_str(), "enabled" | "adaptive"));
        let last_user = messages.iter().rev().find(|m| m.role == "user");
        let in_tool_loop = last_user.is_some_and(|m| m.content.get().contains("\"tool_result\""));
        let results: Vec<ToolResult> = last_user
            .filter(|_| in_tool_loop)
            .and_then(|m| serde_json::from_str::<Vec<ToolResult>>(m.content.get()).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.kind == "tool_result")
            .collect();
        let failed_tool_calls = results
            .iter()
            .filter(|r| r.is_error)
            .filter_map(|r| r.tool_use_id.clone())
            .collect();
        let answered_tool_calls = results.into_iter().filter_map(|r| r.tool_use_id).collect();
        let turn = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            messages.len().hash(&mut hasher);
            messages.last().map(|m| m.content.get()).hash(&mut hasher);
            hasher.finish()
        };
        let has_images = messages
            .iter()
            .any(|m| m.role == "user" && m.content.get().contains("\"image\""));
        let (latest_user_text, prompt_chars) = messages
            .iter()
            .rev()
            .filter(|m| m.role == "user")
            .map(|m| human_text(m.content))
            .find(|(t, _)| !t.is_empty())
            .unwrap_or_default();
        let system = summary.system.map(RawValue::get).unwrap_or("");
        let security_monitor = system.contains(SECURITY_MONITOR);
        let trimmed = latest_user_text.trim();
        let side = if summary.max_tokens == Some(1)
            || (messages.len() == 1 && matches!(trimmed, "warmup" | "quota"))
        {
            Some(Side::Probe)
        } else if security_monitor {
            Some(Side::SecurityMonitor)
        } else if system.contains(TITLE_CHORE)
            || summary
                .output_config
                .is_some_and(|o| o.get().contains("\"title\""))
        {
            Some(Side::Title)
        } else if trimmed.contains(COMPACTION) {
            Some(Side::Summary)
        } else if trimmed.starts_with(WEB_SEARCH)
            && tool_types.iter().any(|k| k.starts_with("web_search"))
        {
            Some(Side::WebSearch)
        } else {
            None
        };
        let claude_only = if server_tool {
            Some(ClaudeOnly::ServerTool)
        } else if security_monitor {
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
        RequestFacts {
            model: summary.model().unwrap_or_default().to_owned(),
            max_tokens: summary.max_tokens,
            thinking_budget,
            thinking,
            input_tokens: crate::wire::tokens::estimate(body),
            tools,
            in_tool_loop,
            answered_tool_calls,
            failed_tool_calls,
            turn,
            latest_user_text,
            prompt_chars,
            side,
            has_images,
            claude_only,
        }
    }
}

/// What a human wrote in a user turn: its text blocks (a plain string too), without
/// `<system-reminder>` sections and tool results. Lower-cased, cut to [`TEXT_LIMIT`];
/// with its full length.
fn human_text(content: &RawValue) -> (String, usize) {
    let text = match serde_json::from_str::<String>(content.get()) {
        Ok(s) => without_reminders(&s),
        Err(_) => serde_json::from_str::<Vec<Block<'_>>>(content.get())
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text)
            .map(|t| without_reminders(&t))
            .filter(|t| !t.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let chars = text.chars().count();
    let mut text = text.trim().to_owned();
    if text.len() > TEXT_LIMIT {
        let mut cut = TEXT_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    (text.to_lowercase(), chars)
}

/// `text` without its `<system-reminder>…</system-reminder>` sections.
fn without_reminders(text: &str) -> String {
    const OPEN: &str = "<system-reminder>";
    const CLOSE: &str = "</system-reminder>";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        match rest[start..].find(CLOSE) {
            Some(end) => rest = &rest[start + end + CLOSE.len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}
