//! Realistic OpenAI-compatible Chat Completions answers (as LM Studio / llama.cpp send them).

use serde_json::{json, Value};

use crate::mock::{Recorded, Reply};

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1764000000,
        "model": "local-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn usage_and_done() -> Vec<String> {
    vec![
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
}

pub fn text_stream(text: &str) -> Vec<String> {
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for piece in text.split_inclusive(' ') {
        out.push(chunk(json!({"content": piece}), None));
    }
    out.push(chunk(json!({}), Some("stop")));
    out.extend(usage_and_done());
    out
}

/// A tool call whose arguments arrive in three fragments.
pub fn tool_call_stream(name: &str, arguments: &Value) -> Vec<String> {
    let args = arguments.to_string();
    let third = args.len() / 3;
    let mut out = vec![chunk(
        json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function",
            "function": {"name": name, "arguments": ""}}]}),
        None,
    )];
    for part in [&args[..third], &args[third..2 * third], &args[2 * third..]] {
        out.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
            None,
        ));
    }
    out.push(chunk(json!({}), Some("tool_calls")));
    out.extend(usage_and_done());
    out
}

pub fn completion(text: &str) -> Value {
    json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1764000000, "model": "local-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}})
}

/// An agent-like local model: answers a tool result with what it said; asked to "run"
/// something with tools available, calls `Bash`; otherwise says `text`.
pub fn agent_reply(req: &Recorded, text: &str) -> Reply {
    if req.uri.ends_with("/models") {
        return Reply::json(
            json!({"object": "list", "data": [{"id": "local-model", "object": "model"}]}),
        );
    }
    let body = req.json();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let stream = body["stream"] == true;
    let answer = if last["role"] == "tool" {
        Some(format!(
            "The command printed {}.",
            last["content"].as_str().unwrap_or("").trim()
        ))
    } else {
        None
    };
    let wants_tool =
        body["tools"].is_array() && last["content"].as_str().is_some_and(|c| c.contains("run "));
    match (answer, wants_tool, stream) {
        (Some(answer), _, true) => Reply::sse(text_stream(&answer)),
        (Some(answer), _, false) => Reply::json(completion(&answer)),
        (None, true, true) => Reply::sse(tool_call_stream(
            "Bash",
            &json!({"command": "echo pai-local-ok", "description": "Print a marker"}),
        )),
        (None, true, false) => {
            Reply::json(json!({"id": "chatcmpl-mock", "object": "chat.completion",
            "model": "local-model", "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1",
                "type": "function", "function": {"name": "Bash",
                "arguments": "{\"command\":\"echo pai-local-ok\"}"}}]}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 7}}))
        }
        (None, _, true) => Reply::sse(text_stream(text)),
        (None, _, false) => Reply::json(completion(text)),
    }
}
