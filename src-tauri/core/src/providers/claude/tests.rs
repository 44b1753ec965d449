use super::*;
use serde_json::json;

fn shaped(body: &Value, model: &str, requested: &str, signatures: &Signatures) -> Option<Value> {
    shape(
        &MessagesBody::from_value(body.clone()),
        model,
        Some(requested),
        signatures,
    )
    .map(|s| s.body.json().clone())
}

fn tool_loop(thinking: Value, first: Value) -> Value {
    json!({"model": "claude-opus-5-5", "thinking": thinking, "messages": [
        {"role": "user", "content": "run ls"},
        {"role": "assistant", "content": [first, {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a"}]}
    ]})
}

#[test]
fn a_step_down_drops_the_blocks_opus_signed_and_keeps_thinking_on() {
    let signatures = Signatures::default();
    signatures.record("claude-opus-5-5", "OPUS-SIG");
    let body = tool_loop(
        json!({"type": "adaptive", "display": "omitted"}),
        json!({"type": "thinking", "thinking": "", "signature": "OPUS-SIG"}),
    );
    let out = shaped(&body, "claude-sonnet-5-5", "claude-opus-5-5", &signatures).unwrap();
    assert_eq!(out["model"], "claude-sonnet-5-5");
    assert_eq!(
        out["thinking"], body["thinking"],
        "thinking cannot be turned off on 5.5"
    );
    assert_eq!(out["messages"][1]["content"][0]["type"], "tool_use");
    // Back on Opus, its own block is kept: nothing to change.
    assert_eq!(
        shaped(&body, "claude-opus-5-5", "claude-opus-5-5", &signatures),
        None
    );
}

#[test]
fn a_turn_from_a_local_model_on_an_older_claude_turns_thinking_off() {
    let body = json!({"model": "claude-opus-4-8", "thinking": {"type": "adaptive"},
    "messages": [
        {"role": "user", "content": "run ls"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a"}]}
    ]});
    let out = shaped(
        &body,
        "claude-opus-4-8",
        "claude-opus-4-8",
        &Signatures::default(),
    )
    .unwrap();
    assert!(out.get("thinking").is_none());
    assert_eq!(out["messages"], body["messages"]);
    // On Opus 5.5 the same turn is sent as it is: thinking stays, nothing to drop.
    let mut strict = body.clone();
    strict["model"] = json!("claude-opus-5-5");
    assert_eq!(
        shaped(
            &strict,
            "claude-opus-5-5",
            "claude-opus-5-5",
            &Signatures::default()
        ),
        None
    );
}

#[test]
fn claudes_own_signed_turns_and_plain_requests_are_left_alone() {
    let body = tool_loop(
        json!({"type": "enabled", "budget_tokens": 2000}),
        json!({"type": "thinking", "thinking": "ok", "signature": "EqQB"}),
    );
    assert_eq!(
        shaped(
            &body,
            "claude-opus-4-8",
            "claude-opus-4-8",
            &Signatures::default()
        ),
        None
    );
    let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        shaped(
            &plain,
            "claude-opus-5-5",
            "claude-opus-5-5",
            &Signatures::default()
        ),
        None
    );
}

#[test]
fn unsigned_thinking_blocks_are_removed() {
    let body = json!({"messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""},
            {"type": "text", "text": "hi"}]}]});
    let out = shaped(
        &body,
        "claude-opus-5-5",
        "claude-opus-5-5",
        &Signatures::default(),
    )
    .unwrap();
    assert_eq!(
        out["messages"][0]["content"],
        json!([{"type": "text", "text": "hi"}])
    );
}

#[test]
fn another_model_than_asked_gets_only_what_it_accepts() {
    let body = json!({"model": "claude-opus-4-8", "max_tokens": 100,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "temperature": 0.2, "top_k": 5,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure,"}]});
    let out = shaped(
        &body,
        "claude-sonnet-5-5",
        "claude-opus-4-8",
        &Signatures::default(),
    )
    .unwrap();
    assert_eq!(out["thinking"], json!({"type": "adaptive"}));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert!(out.get("temperature").is_none() && out.get("top_k").is_none());
    assert_eq!(out["messages"].as_array().unwrap().len(), 1, "no prefill");
    let mut disabled = body.clone();
    disabled["thinking"] = json!({"type": "disabled"});
    let out = shaped(
        &disabled,
        "claude-sonnet-5-5",
        "claude-opus-4-8",
        &Signatures::default(),
    )
    .unwrap();
    assert!(out.get("thinking").is_none());
    // The client's own choice of model is the client's: sent as it came.
    let mut own = body.clone();
    own["model"] = json!("claude-sonnet-5-5");
    assert_eq!(
        shaped(
            &own,
            "claude-sonnet-5-5",
            "claude-sonnet-5-5",
            &Signatures::default()
        ),
        None
    );
}
