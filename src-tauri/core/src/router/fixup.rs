//! Makes a conversation that moved between providers acceptable to Anthropic again.
//!
//! With thinking on, Anthropic wants every assistant turn that used a tool to begin with a
//! signed thinking block, returned byte for byte. Turns another provider produced have no
//! such block (or one without a valid signature). For such a request, unsigned thinking
//! blocks are removed and thinking is turned off for that one request.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::wire::body::MessagesBody;

/// Returns the fixed body, or `None` when the request is fine as it is. Deciding reads
/// a borrowed view of the bytes; only a body that needs the fix is parsed and rewritten.
pub fn unsigned_thinking_fix(body: &MessagesBody) -> Option<MessagesBody> {
    let view: View<'_> = serde_json::from_slice(body.bytes()).ok()?;
    if !view.needs_fix() {
        return None;
    }
    Some(MessagesBody::from_value(fixed(
        body.json(),
        view.thinking_on(),
    )))
}

/// What the fix looks at: the thinking setting and the assistant turns' blocks.
#[derive(Deserialize)]
struct View<'a> {
    #[serde(borrow, default)]
    thinking: Option<Typed<'a>>,
    #[serde(borrow, default)]
    messages: Vec<Turn<'a>>,
}

#[derive(Deserialize)]
struct Turn<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
}

impl Block<'_> {
    fn is_signed_thinking(&self) -> bool {
        self.kind == "thinking" && self.signature.as_deref().is_some_and(|s| !s.is_empty())
    }

    fn is_unsigned_thinking(&self) -> bool {
        self.kind == "thinking" && !self.is_signed_thinking()
    }
}

impl View<'_> {
    fn thinking_on(&self) -> bool {
        self.thinking.as_ref().is_some_and(|t| t.kind != "disabled")
    }

    fn needs_fix(&self) -> bool {
        let thinking_on = self.thinking_on();
        self.messages
            .iter()
            .filter(|m| m.role == "assistant")
            .filter_map(|m| serde_json::from_str::<Vec<Block<'_>>>(m.content.get()).ok())
            .any(|blocks| {
                let unsigned = blocks.iter().any(Block::is_unsigned_thinking);
                let uses_tools = blocks.iter().any(|b| b.kind == "tool_use");
                let starts_signed = blocks
                    .first()
                    .is_some_and(|b| b.is_signed_thinking() || b.kind == "redacted_thinking");
                unsigned || (thinking_on && uses_tools && !starts_signed)
            })
    }
}

/// The body without unsigned thinking blocks, and with thinking off if it was on.
fn fixed(body: &Value, thinking_on: bool) -> Value {
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
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fix(body: &Value) -> Option<Value> {
        unsigned_thinking_fix(&MessagesBody::from_value(body.clone())).map(|b| b.json().clone())
    }

    #[test]
    fn a_turn_from_another_provider_turns_thinking_off() {
        let body = json!({"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
        "messages": [
            {"role": "user", "content": "run ls"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a"}]}
        ]});
        let fixed = fix(&body).unwrap();
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
        assert_eq!(fix(&body), None);
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(fix(&plain), None);
    }

    #[test]
    fn unsigned_thinking_blocks_are_removed() {
        let body = json!({"messages": [
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""},
                {"type": "text", "text": "hi"}]}]});
        let fixed = fix(&body).unwrap();
        assert_eq!(
            fixed["messages"][0]["content"],
            json!([{"type": "text", "text": "hi"}])
        );
    }
}
