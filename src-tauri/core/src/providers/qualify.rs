//! Model qualification: is a provider fit for Claude Code's agentic work?
//!
//! A short exam through the provider's own request path (translation included): a chat
//! turn, a tool call, the follow-up with the tool's result, and the context window Claude
//! Code needs for its system prompt and tools. The verdict says what to use it for.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::wire::body::MessagesBody;

use super::{AnyProvider, MessagesRequest, Provider};

/// Claude Code's system prompt and tools take ~25k tokens before any work.
pub const AGENTIC_CONTEXT: u32 = 25_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Fit for Claude Code's agentic work: tools round-trip and the context fits.
    Agentic,
    /// Answers, but cannot drive tools (or has too small a context): simple chat only.
    ChatOnly,
    Unfit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qualification {
    pub provider: String,
    pub model: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    pub checks: Vec<Check>,
    pub at: DateTime<Utc>,
}

const WEATHER_TOOL: &str = r#"[{"name": "get_weather", "description": "Current weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]"#;

/// Sends one non-streaming request through the provider; the Anthropic answer as JSON.
async fn ask(
    provider: &AnyProvider,
    http: &crate::net::Http,
    model: &str,
    body: &Value,
) -> Result<Value, String> {
    let message = MessagesBody::from_value(body.clone());
    let headers = HeaderMap::new();
    let request = MessagesRequest {
        body: &message,
        original: &message,
        model,
        requested_model: Some(model),
        stream: false,
        path_and_query: "/v1/messages",
        client_headers: &headers,
        input_tokens: crate::wire::tokens::estimate(message.bytes()),
    };
    let upstream = provider
        .messages(http, &request)
        .await
        .map_err(|e| e.to_string())?;
    let status = upstream.status;
    let mut collected = Vec::new();
    let mut body = upstream.body;
    while let Some(chunk) = body.next().await {
        collected.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    let answer: Value = serde_json::from_slice(&collected)
        .map_err(|_| format!("answered HTTP {status} with something that is not JSON"))?;
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("answered HTTP {}: {message}", status.as_u16()));
    }
    Ok(answer)
}

fn text_of(answer: &Value) -> String {
    answer["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

pub async fn qualify(
    provider: &AnyProvider,
    http: &crate::net::Http,
    context_window: Option<u32>,
) -> Qualification {
    let config = provider.config();
    let model = config
        .model
        .clone()
        .or_else(|| config.tiers.get("haiku").cloned())
        .unwrap_or_else(|| "auto".to_owned());
    let mut checks = Vec::new();
    let tools: Value = serde_json::from_str(WEATHER_TOOL).unwrap_or(Value::Null);

    let chat = ask(
        provider,
        http,
        &model,
        &json!({"model": model, "max_tokens": 32,
            "messages": [{"role": "user", "content": "Reply with the single word READY."}]}),
    )
    .await;
    let chat_ok = matches!(&chat, Ok(answer) if !text_of(answer).trim().is_empty());
    checks.push(Check {
        name: "chat".into(),
        passed: chat_ok,
        detail: match &chat {
            Ok(answer) if chat_ok => format!(
                "answered {:?}",
                text_of(answer).chars().take(40).collect::<String>()
            ),
            Ok(_) => "answered with no text".into(),
            Err(error) => error.clone(),
        },
    });

    let question = json!({"role": "user", "content": "What is the weather in Paris right now? Use the get_weather tool."});
    let call = ask(
        provider,
        http,
        &model,
        &json!({"model": model, "max_tokens": 256, "tools": tools, "messages": [question]}),
    )
    .await;
    let tool_use = call.as_ref().ok().and_then(|answer| {
        answer["content"]
            .as_array()
            .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_use").cloned())
    });
    let call_ok = tool_use
        .as_ref()
        .is_some_and(|t| t["name"] == "get_weather" && t["input"]["city"].is_string());
    checks.push(Check {
        name: "tool call".into(),
        passed: call_ok,
        detail: match (&call, &tool_use) {
            (Err(error), _) => error.clone(),
            (Ok(_), Some(t)) if call_ok => format!("called get_weather({})", t["input"]),
            (Ok(_), Some(t)) => format!("called {} with {}", t["name"], t["input"]),
            (Ok(answer), None) => format!(
                "answered in text instead of calling the tool: {:?}",
                text_of(answer).chars().take(60).collect::<String>()
            ),
        },
    });

    let result_ok = if let (true, Some(tool_use)) = (call_ok, &tool_use) {
        let follow_up = ask(
            provider,
            http,
            &model,
            &json!({"model": model, "max_tokens": 64, "tools": tools, "messages": [
                question,
                {"role": "assistant", "content": [tool_use]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"],
                    "content": "18 degrees Celsius and sunny"}]}
            ]}),
        )
        .await;
        let ok = matches!(&follow_up, Ok(answer) if !text_of(answer).trim().is_empty());
        checks.push(Check {
            name: "tool result".into(),
            passed: ok,
            detail: match &follow_up {
                Ok(answer) => format!(
                    "answered {:?}",
                    text_of(answer).chars().take(60).collect::<String>()
                ),
                Err(error) => error.clone(),
            },
        });
        ok
    } else {
        false
    };

    let context_ok = context_window.is_some_and(|w| w >= AGENTIC_CONTEXT);
    checks.push(Check {
        name: "context".into(),
        passed: context_ok,
        detail: match context_window {
            Some(w) => format!("{w} tokens (Claude Code needs ~{AGENTIC_CONTEXT})"),
            None => "unknown: set context_window in the config".into(),
        },
    });

    let (verdict, reason) = if !chat_ok {
        (
            Verdict::Unfit,
            format!("it does not answer: {}", checks[0].detail),
        )
    } else if call_ok && result_ok && context_ok {
        (
            Verdict::Agentic,
            "tools round-trip and Claude Code's context fits".to_owned(),
        )
    } else {
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        (Verdict::ChatOnly, failed.join("; "))
    };
    Qualification {
        provider: config.name.clone(),
        model: Some(model),
        verdict,
        reason,
        checks,
        at: Utc::now(),
    }
}

/// Runs the exam on the provider named `name` (checking it first for its model and
/// context window), stores the report in `conn`, and returns it.
pub async fn qualify_named(
    config: &crate::config::Config,
    name: &str,
    http: &crate::net::Http,
    board: &super::HealthBoard,
) -> Result<Qualification, String> {
    let providers = super::Providers::from_config(config, board);
    let provider = providers.get(name).ok_or_else(|| {
        let known: Vec<&str> = providers.iter().map(AnyProvider::name).collect();
        format!("no provider named {name:?} (known: {})", known.join(", "))
    })?;
    let mut window = provider.config().context_window;
    if let Some(Ok(info)) = provider.check(http).await {
        window = window.or(info.context_window);
        board.set_info(name, info);
    }
    let report = qualify(provider, http, window).await;
    board.set_qualification(report.clone());
    Ok(report)
}

impl Qualification {
    /// The report in a few readable lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} ({}): {} — {}\n",
            self.provider,
            self.model.as_deref().unwrap_or("?"),
            self.verdict_words(),
            self.reason
        );
        for check in &self.checks {
            out.push_str(&format!(
                "  [{}] {:<12} {}\n",
                if check.passed { "ok" } else { "--" },
                check.name,
                check.detail
            ));
        }
        out
    }

    /// What the verdict allows, in words: "fit for agentic work", "chat only", "unfit".
    pub fn verdict_words(&self) -> &'static str {
        match self.verdict {
            Verdict::Agentic => "fit for agentic work",
            Verdict::ChatOnly => "chat only",
            Verdict::Unfit => "unfit",
        }
    }

    pub fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Verdict::Agentic => "agentic",
            Verdict::ChatOnly => "chat-only",
            Verdict::Unfit => "unfit",
        }
    }
}
