//! Chat Completions response -> Messages response, and OpenAI errors -> Anthropic errors.

use serde_json::{json, Value};

use super::{stop_reason, tool_id};

/// Translates a complete (non-streaming) chat completion. A body without a message in
/// `choices[0]` is not an answer: the error says what it lacked, so the caller can fail
/// over instead of handing the client an empty "success".
pub fn to_anthropic(completion: &Value, fallback_model: &str) -> Result<Value, String> {
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
    let message = Some(message);
    let mut content = Vec::new();
    if let Some(text) = message
        .and_then(|m| m.get("content"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    let calls = message
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (index, call) in calls.iter().enumerate() {
        let function = call.get("function");
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
            "name": function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or(""),
            "input": input,
        }));
    }
    if content.is_empty() {
        content.push(json!({"type": "text", "text": ""}));
    }
    let finish = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str);
    let usage = completion.get("usage");
    let tokens = |key: &str| {
        usage
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Ok(json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": completion.get("model").and_then(Value::as_str).unwrap_or(fallback_model),
        "content": content,
        "stop_reason": stop_reason(finish, !calls.is_empty()),
        "stop_sequence": null,
        "usage": {"input_tokens": tokens("prompt_tokens"), "output_tokens": tokens("completion_tokens")},
    }))
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
        let message = to_anthropic(&completion, "fallback").unwrap();
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
            assert_eq!(to_anthropic(&completion, "m").unwrap()["stop_reason"], stop);
        }
        let empty = to_anthropic(
            &json!({"choices": [{"finish_reason": "stop", "message": {"content": ""}}]}),
            "m",
        )
        .unwrap();
        assert_eq!(empty["content"], json!([{"type": "text", "text": ""}]));
        assert_eq!(empty["model"], "m");
        for not_an_answer in [json!({"choices": []}), json!({}), json!({"choices": [{}]})] {
            assert!(
                to_anthropic(&not_an_answer, "m").is_err(),
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
