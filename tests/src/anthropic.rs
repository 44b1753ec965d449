//! Realistic Anthropic Messages responses, as the API sends them.

use serde_json::{json, Value};

pub fn text_message(model: &str, text: &str) -> Value {
    json!({
        "id": "msg_mock_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 9}
    })
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A streamed answer: a thinking block with a signature, then `text` in several deltas.
pub fn text_stream(model: &str, text: &str) -> Vec<String> {
    let mut events = vec![
        event(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_mock_02","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}),
        ),
        event(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user greets me."}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIARgCIkD+/sig==\u{2028}ÿ"}}),
        ),
        event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        event(
            "content_block_start",
            json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}),
        ),
        "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
    ];
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for piece in words.chunks(2) {
        events.push(event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":piece.concat()}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        json!({"type":"content_block_stop","index":1}),
    ));
    events.push(event(
        "message_delta",
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}),
    ));
    events.push(event("message_stop", json!({"type":"message_stop"})));
    events
}

/// A streamed `tool_use` of Claude Code's `Bash` tool.
pub fn bash_tool_use_stream(model: &str, command: &str) -> Vec<String> {
    let input = json!({"command": command, "description": "Run the command"}).to_string();
    let (a, b) = input.split_at(input.len() / 2);
    vec![
        event(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_mock_03","type":"message","role":"assistant","model":model,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":1}}}),
        ),
        event(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_mock_01","name":"Bash","input":{}}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":a}}),
        ),
        event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":b}}),
        ),
        event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        event(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}),
        ),
        event("message_stop", json!({"type":"message_stop"})),
    ]
}
