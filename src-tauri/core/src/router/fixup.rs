//! Makes a conversation that moved between providers acceptable to Anthropic again.
//!
//! With thinking on, Anthropic wants every assistant turn that used a tool to begin with a
//! signed thinking block, returned byte for byte. Turns another provider produced have no
//! such block (or one without a valid signature). For such a request, unsigned thinking
//! blocks are removed and thinking is turned off for that one request.

use serde_json::Value;

/// Returns the fixed body, or `None` when the request is fine as it is.
pub fn unsigned_thinking_fix(body: &Value) -> Option<Value> {
    let thinking_on = body
        .get("thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t != "disabled");
    let messages = body.get("messages")?.as_array()?;
    let mut needs_fix = false;
    for message in messages.iter().filter(|m| m["role"] == "assistant") {
        let Some(blocks) = message["content"].as_array() else {
            continue;
        };
        let unsigned = blocks
            .iter()
            .any(|b| b["type"] == "thinking" && b["signature"].as_str().is_none_or(str::is_empty));
        let uses_tools = blocks.iter().any(|b| b["type"] == "tool_use");
        let starts_signed = blocks.first().is_some_and(|b| {
            (b["type"] == "thinking" && b["signature"].as_str().is_some_and(|s| !s.is_empty()))
                || b["type"] == "redacted_thinking"
        });
        if unsigned || (thinking_on && uses_tools && !starts_signed) {
            needs_fix = true;
            break;
        }
    }
    if !needs_fix {
        return None;
    }
    let mut fixed = body.clone();
    if let Some(messages) = fixed["messages"].as_array_mut() {
        for message in messages.iter_mut().filter(|m| m["role"] == "assistant") {
            if let Some(blocks) = message["content"].as_array_mut() {
                blocks.retain(|b| {
                    !(b["type"] == "thinking" && b["signature"].as_str().is_none_or(str::is_empty))
                });
            }
        }
    }
    if thinking_on {
        if let Some(object) = fixed.as_object_mut() {
            object.remove("thinking");
            // Effort settings only make sense with thinking on.
            object.remove("context_management");
        }
    }
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_turn_from_another_provider_turns_thinking_off() {
        let body = json!({"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
        "messages": [
            {"role": "user", "content": "run ls"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a"}]}
        ]});
        let fixed = unsigned_thinking_fix(&body).unwrap();
        assert!(fixed.get("thinking").is_none());
        assert_eq!(fixed["messages"], body["messages"]);
    }

    #[test]
    fn claudes_own_signed_turns_are_left_alone() {
        let body = json!({"thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [
            {"role": "user", "content": "run ls"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "ok", "signature": "EqQB"},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}]}
        ]});
        assert_eq!(unsigned_thinking_fix(&body), None);
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(unsigned_thinking_fix(&plain), None);
    }

    #[test]
    fn unsigned_thinking_blocks_are_removed() {
        let body = json!({"messages": [
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""},
                {"type": "text", "text": "hi"}]}]});
        let fixed = unsigned_thinking_fix(&body).unwrap();
        assert_eq!(
            fixed["messages"][0]["content"],
            json!([{"type": "text", "text": "hi"}])
        );
    }
}
