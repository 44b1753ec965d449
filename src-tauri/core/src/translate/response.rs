//! Chat Completions response -> Messages response, and OpenAI errors -> Anthropic errors.

use serde_json::{json, Value};

use super::{stop_reason, tool_id};

/// Translates a complete (non-streaming) chat completion. A body without a message in
/// `choices[0]` is not an answer, and neither is a tool call without a name: the error
/// says what it lacked, so the caller can fail over instead of handing the client an
/// empty "success". Reasoning (`reasoning_content`, `reasoning`) becomes a thinking block
/// when the client asked for `thinking`; `content` given as parts is read whole (text and
/// `refusal` parts); a legacy `function_call` is a tool call; cached prompt tokens are
/// `cache_read_input_tokens`, apart from `input_tokens`.
pub fn to_anthropic(
    completion: &Value,
    fallback_model: &str,
    thinking: bool,
) -> Result<Value, String> {
    let id = completion
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("completion");
    let message_id = format!("msg_{}", sanitize(id));
    let choice = completion.get("choices").and_then(|c| c.get(0));
    let Some(message) = choice
        .and_then(|c| c.get("message"))
        .filter(|m| m.is_object())
    else {
        return Err("its answer has no choices[0].message".to_owned());
    };
    let mut content = Vec::new();
    if let Some(reasoning) = super::reasoning_of(message).filter(|_| thinking) {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    let (text, refused) = text_of(message);
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    let mut calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(call) = message.get("function_call").filter(|c| c.is_object()) {
        calls.push(json!({"type": "function", "function": call}));
    }
    for (index, call) in calls.iter().enumerate() {
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            return Err("it made a tool call without a name".to_owned());
        }
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let input: Value = serde_json::from_str(arguments)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": tool_id(call.get("id").and_then(Value::as_str), &message_id, index),
            "name": name,
            "input": input,
        }));
    }
    if content.is_empty() {
        content.push(json!({"type": "text", "text": ""}));
    }
    let finish = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
        .or(refused.then_some("content_filter"));
    let usage = completion.get("usage");
    let tokens = |key: &str| {
        usage
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let prompt = tokens("prompt_tokens");
    let mut usage = json!({"input_tokens": prompt, "output_tokens": tokens("completion_tokens")});
    if let Some(cached) = usage_of(completion).and_then(super::cached_tokens) {
        let cached = cached.min(prompt);
        usage["input_tokens"] = json!(prompt - cached);
        usage["cache_read_input_tokens"] = json!(cached);
    }
    Ok(json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": completion.get("model").and_then(Value::as_str).unwrap_or(fallback_model),
        "content": content,
        "stop_reason": stop_reason(finish, !calls.is_empty()),
        "stop_sequence": null,
        "usage": usage,
    }))
}

fn usage_of(completion: &Value) -> Option<&Value> {
    completion.get("usage").filter(|u| u.is_object())
}

/// A message's text — a string, or parts: `text` parts, and `refusal` parts (said as they
/// are) — and whether it was a refusal.
fn text_of(message: &Value) -> (String, bool) {
    let refusal = message
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    match message.get("content") {
        Some(Value::String(text)) if !text.is_empty() => (text.clone(), false),
        Some(Value::Array(parts)) => {
            let mut refused = false;
            let text: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                    Some("text") => p.get("text").and_then(Value::as_str),
                    Some("refusal") => {
                        refused = true;
                        p.get("refusal").and_then(Value::as_str)
                    }
                    _ => None,
                })
                .collect();
            (text.join(""), refused)
        }
        _ => match refusal {
            Some(refusal) => (refusal.to_owned(), true),
            None => (String::new(), false),
        },
    }
}

/// Keeps an id to the characters Anthropic ids use.
pub fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The message of an OpenAI-style error body (`{"error":{"message":…}}`), or its text.
pub fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("error")
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .or_else(|| v.get("message").and_then(Value::as_str))
            .map(str::to_owned)
    });
    message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(300).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_anthropic_plain(completion: &Value, model: &str) -> Result<Value, String> {
        to_anthropic(completion, model, false)
    }

    #[test]
    fn text_and_tool_calls() {
        let completion = json!({
            "id": "chatcmpl-123", "object": "chat.completion", "model": "qwen3-coder",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_abc", "type": "function",
                    "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}
        });
        let message = to_anthropic(&completion, "fallback", false).unwrap();
        assert_eq!(message["id"], "msg_chatcmpl-123");
        assert_eq!(message["model"], "qwen3-coder");
        assert_eq!(
            message["content"][0],
            json!({"type": "text", "text": "Let me look."})
        );
        assert_eq!(
            message["content"][1],
            json!({"type": "tool_use", "id": "call_abc", "name": "Bash", "input": {"command": "ls"}})
        );
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            message["usage"],
            json!({"input_tokens": 120, "output_tokens": 15})
        );
    }

    #[test]
    fn finish_reasons_and_empty_answers() {
        for (finish, stop) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("content_filter", "refusal"),
        ] {
            let completion =
                json!({"choices": [{"finish_reason": finish, "message": {"content": "x"}}]});
            assert_eq!(
                to_anthropic(&completion, "m", false).unwrap()["stop_reason"],
                stop
            );
        }
        let empty = to_anthropic_plain(
            &json!({"choices": [{"finish_reason": "stop", "message": {"content": ""}}]}),
            "m",
        )
        .unwrap();
        assert_eq!(empty["content"], json!([{"type": "text", "text": ""}]));
        assert_eq!(empty["model"], "m");
        for not_an_answer in [json!({"choices": []}), json!({}), json!({"choices": [{}]})] {
            assert!(
                to_anthropic(&not_an_answer, "m", false).is_err(),
                "{not_an_answer}"
            );
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"error":{"message":"model not loaded","type":"x"}}"#),
            "model not loaded"
        );
        assert_eq!(error_message(b"plain failure"), "plain failure");
    }
}
