//! A mock of Anthropic's API as documented today, strict where the real one is strict:
//! a request the real server refuses, this one refuses with the same status and message.
//!
//! Built from: the Messages API reference (errors `{"type":"error","error":{…}}`; a 404
//! for a model it does not serve); "Models API — List Models" (`GET /v1/models`, newest
//! first, credentials required); "What's new in Claude Opus 5.5" (and the Sonnet/Haiku
//! 5.5 and Fable 5.1 pages): thinking can't be disabled (`disabled`, or `enabled` with a
//! budget, is a 400 with the message quoted below), forced tool use is a 400, thinking
//! blocks are tied to the model that produced them (another model's signature is a 400),
//! non-default sampling parameters and a final assistant turn are not supported; and, for
//! the models before them, "Extended thinking": with thinking on, a final assistant turn
//! that uses a tool must begin with a thinking block.
//!
//! Its answers carry a thinking block signed for the model that wrote it (the mock's own
//! signature format, `sig:<model>:<n>` — opaque to the proxy, as Anthropic's are).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::mock::{MockUpstream, Recorded, Reply};

/// The models the mock serves, newest first (as `GET /v1/models` lists them).
pub const MODELS: [&str; 8] = [
    "claude-fable-5-2",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-haiku-4-5-20251001",
];

/// What the test can change while it runs.
#[derive(Clone, Default)]
pub struct Knobs {
    /// Model families whose week is used up: requests for them get a 429 naming it.
    pub capped: Arc<Mutex<HashSet<String>>>,
    /// The 5-hour window is used up: every request gets a 429.
    pub out_of_quota: Arc<std::sync::atomic::AtomicBool>,
    signed: Arc<AtomicU64>,
}

impl Knobs {
    pub fn run_out(&self) {
        self.out_of_quota.store(true, Ordering::SeqCst);
    }

    pub fn cap(&self, family: &str) {
        self.capped.lock().unwrap().insert(family.to_owned());
    }
}

pub struct ClaudeApi {
    pub mock: MockUpstream,
    pub knobs: Knobs,
}

impl ClaudeApi {
    pub async fn start() -> ClaudeApi {
        let knobs = Knobs::default();
        let answering = knobs.clone();
        let mock = MockUpstream::start(move |request| answer(request, &answering)).await;
        ClaudeApi { mock, knobs }
    }

    pub fn url(&self) -> String {
        self.mock.url()
    }

    /// The Messages requests it received (with how it answered each: its status).
    pub fn messages(&self) -> Vec<Recorded> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| r.uri.starts_with("/v1/messages"))
            .collect()
    }
}

fn error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::status(
        status,
        &[("request-id", "req_mock")],
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn strict(model: &str) -> bool {
    [
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-fable-5-2",
    ]
    .contains(&model)
}

fn answer(request: &Recorded, knobs: &Knobs) -> Reply {
    let credentials =
        request.header("x-api-key").is_some() || request.header("authorization").is_some();
    if !credentials {
        return error(401, "authentication_error", "x-api-key header is required");
    }
    if request.method == "GET" && request.uri.starts_with("/v1/models") {
        let data: Vec<Value> = MODELS
            .iter()
            .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2026-11-01T00:00:00Z"}))
            .collect();
        return Reply::json(json!({"data": data, "has_more": false,
            "first_id": MODELS[0], "last_id": MODELS[MODELS.len() - 1]}));
    }
    let body = request.json();
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if !MODELS.contains(&model.as_str()) {
        return error(404, "not_found_error", &format!("model: {model}"));
    }
    if request.uri.starts_with("/v1/messages/count_tokens") {
        return Reply::json(json!({"input_tokens": 42}));
    }
    if let Some(refused) = refuse(&body, &model) {
        return refused;
    }
    if knobs.out_of_quota.load(Ordering::SeqCst) {
        let reset = (chrono::Utc::now() + chrono::Duration::hours(2))
            .timestamp()
            .to_string();
        return error(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit.",
        )
        .with_headers(vec![
            ("retry-after".into(), "7200".into()),
            (
                "anthropic-ratelimit-unified-status".into(),
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-5h-status".into(),
                "rejected".into(),
            ),
            (
                "anthropic-ratelimit-unified-5h-utilization".into(),
                "1.0".into(),
            ),
            (
                "anthropic-ratelimit-unified-representative-claim".into(),
                "five_hour".into(),
            ),
            ("anthropic-ratelimit-unified-reset".into(), reset.clone()),
            ("anthropic-ratelimit-unified-5h-reset".into(), reset),
        ]);
    }
    let family = model.split('-').nth(1).unwrap_or("").to_owned();
    if knobs.capped.lock().unwrap().contains(&family) {
        let reset = (chrono::Utc::now() + chrono::Duration::days(2))
            .timestamp()
            .to_string();
        return error(
            429,
            "rate_limit_error",
            "This request would exceed your account's rate limit.",
        )
        .with_headers(vec![
            ("retry-after".into(), "172800".into()),
            (
                "anthropic-ratelimit-unified-status".into(),
                "allowed".into(),
            ),
            (
                format!("anthropic-ratelimit-unified-7d_{family}-status"),
                "rejected".into(),
            ),
            (
                format!("anthropic-ratelimit-unified-7d_{family}-reset"),
                reset.clone(),
            ),
            (
                "anthropic-ratelimit-unified-representative-claim".into(),
                format!("seven_day_{family}"),
            ),
            ("anthropic-ratelimit-unified-reset".into(), reset),
        ]);
    }
    let n = knobs.signed.fetch_add(1, Ordering::SeqCst);
    let signature = format!("sig:{model}:{n}");
    let text = format!("answered by {model}");
    if body["stream"] == true {
        Reply::sse(stream(&model, &signature, &text))
    } else {
        Reply::json(
            json!({"id": format!("msg_{n}"), "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "thinking", "thinking": "", "signature": signature}, {"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 9}}),
        )
    }
}

/// What the real API would refuse in this request, as it would say it.
fn refuse(body: &Value, model: &str) -> Option<Reply> {
    let bad = |message: String| Some(error(400, "invalid_request_error", &message));
    let thinking = body["thinking"]["type"].as_str();
    if strict(model) {
        if let Some(kind @ ("disabled" | "enabled")) = thinking {
            return bad(format!("\"thinking.type.{kind}\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior."));
        }
        if let Some(kind @ ("any" | "tool")) = body["tool_choice"]["type"].as_str() {
            return bad(format!("tool_choice.type: \"{kind}\" (forced tool use) is not supported for this model. Use \"auto\" or \"none\"."));
        }
        for key in ["temperature", "top_p", "top_k"] {
            if body.get(key).is_some() {
                return bad(format!(
                    "{key}: non-default sampling parameters are not supported for this model"
                ));
            }
        }
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if (strict(model) || model == "claude-opus-5")
        && messages.last().is_some_and(|m| m["role"] == "assistant")
    {
        return bad("This model does not support assistant message prefill. The conversation must end with a user message.".to_owned());
    }
    let last_assistant = messages.iter().rposition(|m| m["role"] == "assistant");
    for (i, message) in messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["role"] == "assistant")
    {
        let Some(blocks) = message["content"].as_array() else {
            continue;
        };
        for (j, block) in blocks.iter().enumerate() {
            if block["type"] != "thinking" {
                continue;
            }
            let signature = block["signature"].as_str().unwrap_or("");
            let minted_for = signature
                .strip_prefix("sig:")
                .and_then(|s| s.rsplit_once(':'))
                .map(|(m, _)| m);
            if minted_for != Some(model) {
                return bad(format!(
                    "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                ));
            }
        }
        let thinking_on = !strict(model) && matches!(thinking, Some("enabled" | "adaptive"));
        let uses_tool = blocks.iter().any(|b| b["type"] == "tool_use");
        let starts_thinking = blocks
            .first()
            .is_some_and(|b| b["type"] == "thinking" || b["type"] == "redacted_thinking");
        if thinking_on && Some(i) == last_assistant && uses_tool && !starts_thinking {
            return bad(format!("messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block."));
        }
    }
    None
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stream(model: &str, signature: &str, text: &str) -> Vec<String> {
    vec![
        event(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_stream","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}),
        ),
        event(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":signature}}),
        ),
        event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        event(
            "content_block_start",
            json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":text}}),
        ),
        event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":1}),
        ),
        event(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}),
        ),
        event("message_stop", json!({"type":"message_stop"})),
    ]
}
