//! Golden tests of the request translation, from a request Claude Code really sent.

use serde_json::{json, Value};

use super::{to_openai, Limits, MAX_TOOLS};

const CLAUDE_CODE: &str = include_str!("../../../../../tests/fixtures/claude-code-request.json");

fn limits() -> Limits {
    Limits {
        context_window: None,
        input_tokens: 0,
        images: true,
    }
}

#[test]
fn a_real_claude_code_request() {
    let body: Value = serde_json::from_str(CLAUDE_CODE).unwrap();
    let out = to_openai(&body, "qwen3-coder-30b", limits()).unwrap();
    let text = out.to_string();

    assert_eq!(out["model"], "qwen3-coder-30b");
    assert_eq!(out["stream"], true);
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
    assert_eq!(out["max_tokens"], 64000);
    // Anthropic-only fields are gone, wherever they were.
    for gone in ["\"cache_control\":", "\"format\":\"uri\""] {
        assert!(!text.contains(gone), "{gone} survived");
    }
    for key in [
        "thinking",
        "context_management",
        "output_config",
        "metadata",
        "system",
    ] {
        assert!(out.get(key).is_none(), "{key} survived");
    }
    // One system message first: the system blocks and the mid-conversation system message.
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    let first_block = body["system"][0]["text"].as_str().unwrap();
    assert!(system.starts_with(first_block));
    let in_conversation = body["messages"][1]["content"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            body["messages"][1]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        });
    assert!(system.contains(&in_conversation));
    assert!(messages[1..].iter().all(|m| m["role"] != "system"));
    assert_eq!(messages.last().unwrap()["role"], "user");
    // Every tool, as a function with a cleaned object schema.
    let tools = out["tools"].as_array().unwrap();
    assert_eq!(tools.len(), body["tools"].as_array().unwrap().len());
    for tool in tools {
        assert_eq!(tool["type"], "function");
        assert_eq!(tool["function"]["parameters"]["type"], "object");
        assert!(tool["function"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()));
    }
    assert!(tools.iter().any(|t| t["function"]["name"] == "Bash"));
}

#[test]
fn max_tokens_is_clamped_to_the_context_window() {
    let body: Value = serde_json::from_str(CLAUDE_CODE).unwrap();
    let out = to_openai(
        &body,
        "m",
        Limits {
            context_window: Some(32768),
            input_tokens: 24000,
            images: true,
        },
    )
    .unwrap();
    assert_eq!(out["max_tokens"], 32768 - 24000);
    let full = to_openai(
        &body,
        "m",
        Limits {
            context_window: Some(1000),
            input_tokens: 5000,
            images: true,
        },
    )
    .unwrap();
    assert_eq!(full["max_tokens"], 1);
}

#[test]
fn a_tool_round_trip_follow_up_keeps_order_and_ids() {
    let body = json!({
        "model": "claude-sonnet-5", "max_tokens": 1000,
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": "sig=="},
                {"type": "text", "text": "Running ls."},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "call_x", "name": "Read", "input": {"file_path": "/a"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "a.txt\nb.txt"}]},
                {"type": "tool_result", "tool_use_id": "call_x", "content": "no such file", "is_error": true},
                {"type": "text", "text": "Now summarize."},
                {"type": "text", "text": ""}
            ]}
        ]
    });
    let out = to_openai(&body, "m", limits()).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": "Running ls.", "tool_calls": [
                {"id": "toolu_01", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}},
                {"id": "call_x", "type": "function", "function": {"name": "Read", "arguments": "{\"file_path\":\"/a\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01", "content": "a.txt\nb.txt"},
            {"role": "tool", "tool_call_id": "call_x", "content": "Error: no such file"},
            {"role": "user", "content": "Now summarize."}
        ])
    );
    assert!(out.get("stream").is_none());
}

#[test]
fn images_documents_choices_and_sampling() {
    let body = json!({
        "model": "m", "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["a", "b", "c", "d", "e"],
        "system": "be brief",
        "tools": [
            {"name": "get", "description": "d", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ],
        "tool_choice": {"type": "tool", "name": "get", "disable_parallel_tool_use": true},
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "data:image/png;base64,BBBB"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}},
            {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}}
        ]}]
    });
    let out = to_openai(&body, "m", limits()).unwrap();
    assert_eq!(out["temperature"], 0.2);
    assert_eq!(out["top_p"], 0.9);
    assert!(out.get("top_k").is_none());
    assert_eq!(out["stop"], json!(["a", "b", "c", "d"]));
    assert_eq!(
        out["tools"].as_array().unwrap().len(),
        1,
        "server tools are dropped"
    );
    assert_eq!(
        out["tool_choice"],
        json!({"type": "function", "function": {"name": "get"}})
    );
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        out["messages"][1]["content"],
        json!([
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,BBBB"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "text", "text": "notes\n\ndoc body"},
            {"type": "text", "text": "what is this?"}
        ])
    );
    for (choice, mapped) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ] {
        let mut b = body.clone();
        b["tool_choice"] = choice;
        assert_eq!(to_openai(&b, "m", limits()).unwrap()["tool_choice"], mapped);
    }
}

#[test]
fn too_many_tools_are_capped_and_bad_bodies_refused() {
    let tools: Vec<Value> = (0..200)
        .map(|i| json!({"name": format!("t{i}"), "input_schema": {"type": "object"}}))
        .collect();
    let body = json!({"model": "m", "max_tokens": 5, "tools": tools, "messages": [{"role": "user", "content": "x"}]});
    let out = to_openai(&body, "m", limits()).unwrap();
    assert_eq!(out["tools"].as_array().unwrap().len(), MAX_TOOLS);
    assert!(to_openai(&json!([1]), "m", limits()).is_err());
    assert!(to_openai(
        &json!({"messages": [{"role": "robot", "content": "x"}]}),
        "m",
        limits()
    )
    .is_err());
}
