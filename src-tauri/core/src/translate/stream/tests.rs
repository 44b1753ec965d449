//! Recorded-shape OpenAI streams, fragmented every way backends do, must all become a valid
//! Anthropic event sequence with the same final message.

use serde_json::{json, Value};

use super::StreamTranslator;

fn sse(chunks: &[Value]) -> String {
    let mut out = String::new();
    for chunk in chunks {
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "local-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// Replays Anthropic SSE as a strict client would: checks the event order and builds the
/// final message.
fn accumulate(text: &str) -> Value {
    let mut message = Value::Null;
    let mut open: Option<usize> = None;
    let mut partial_json: Vec<String> = Vec::new();
    let mut stopped = false;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
        let data: Value =
            serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["type"], name);
        assert!(!stopped, "event after message_stop: {name}");
        match name {
            "message_start" => {
                assert!(message.is_null(), "two message_start");
                message = data["message"].clone();
            }
            "content_block_start" => {
                assert!(open.is_none(), "block opened while another is open");
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(
                    index,
                    message["content"].as_array().unwrap().len(),
                    "indices in order"
                );
                message["content"]
                    .as_array_mut()
                    .unwrap()
                    .push(data["content_block"].clone());
                partial_json.push(String::new());
                open = Some(index);
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index), "delta for a block that is not open");
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        let text = message["content"][index]["text"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                            + delta["text"].as_str().unwrap();
                        message["content"][index]["text"] = json!(text);
                    }
                    "input_json_delta" => {
                        partial_json[index].push_str(delta["partial_json"].as_str().unwrap())
                    }
                    "thinking_delta" => {
                        assert_eq!(message["content"][index]["type"], "thinking");
                        let text = message["content"][index]["thinking"]
                            .as_str()
                            .unwrap()
                            .to_owned()
                            + delta["thinking"].as_str().unwrap();
                        message["content"][index]["thinking"] = json!(text);
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index));
                if message["content"][index]["type"] == "tool_use" {
                    let json = &partial_json[index];
                    message["content"][index]["input"] = if json.is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(json).unwrap()
                    };
                }
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with a block open");
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                for (key, value) in data["usage"].as_object().unwrap() {
                    message["usage"][key] = value.clone();
                }
            }
            "message_stop" => stopped = true,
            "error" => {
                message["error"] = data["error"].clone();
                stopped = true;
            }
            other => panic!("unknown event {other}"),
        }
    }
    assert!(stopped, "the stream never ended");
    message
}

/// Translates `input` fed in pieces of `size` bytes.
fn translate(input: &str, size: usize) -> String {
    translate_with(input, size, false)
}

fn translate_with(input: &str, size: usize, thinking: bool) -> String {
    let mut translator = StreamTranslator::new("requested-model", 10).with_thinking(thinking);
    let mut out = String::new();
    for piece in input.as_bytes().chunks(size) {
        out.push_str(&translator.feed(piece));
    }
    out.push_str(&translator.finish());
    out
}

fn final_message(input: &str) -> Value {
    final_message_with(input, false)
}

fn final_message_with(input: &str, thinking: bool) -> Value {
    let whole = accumulate(&translate_with(input, input.len().max(1), thinking));
    // Any chunk boundaries give the same final message.
    for size in [1, 2, 3, 5, 7, 13, 64, 257] {
        assert_eq!(
            accumulate(&translate_with(input, size, thinking)),
            whole,
            "chunk size {size}"
        );
    }
    whole
}

fn backend(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/backends/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_streams_of_six_backends_become_valid_anthropic_streams() {
    // llama.cpp, recorded: text, and its cached tokens apart from the input.
    let llama = final_message_with(&backend("llama-cpp"), true);
    assert_eq!(llama["content"][0]["type"], "text");
    assert!(llama["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Hello!"));
    assert_eq!(llama["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(llama["usage"]["input_tokens"], 21);

    let lmstudio = final_message_with(&backend("lmstudio"), true);
    assert_eq!(
        lmstudio["content"][0],
        json!({"type": "thinking", "thinking": "The user wants the file list.", "signature": ""})
    );
    assert_eq!(lmstudio["content"][1]["name"], "Bash");
    assert_eq!(lmstudio["content"][1]["input"], json!({"command": "ls"}));
    assert_eq!(lmstudio["stop_reason"], "tool_use");

    let ollama = final_message_with(&backend("ollama"), true);
    assert_eq!(ollama["content"][0]["thinking"], "Reading the file first.");
    assert_eq!(
        ollama["content"][1]["input"],
        json!({"file_path": "/w/README.md"})
    );
    assert_eq!(ollama["usage"]["input_tokens"], 1200);

    let vllm = final_message_with(&backend("vllm"), true);
    let calls: Vec<&Value> = vllm["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["input"],
        json!({"file_path": "/a"}),
        "index 0 first"
    );
    assert_eq!(calls[1]["input"], json!({"file_path": "/b"}));
    assert_eq!(vllm["usage"]["cache_read_input_tokens"], 4096);
    assert_eq!(vllm["usage"]["input_tokens"], 5000 - 4096);

    let deepseek = final_message_with(&backend("deepseek"), true);
    assert_eq!(
        deepseek["content"][0]["thinking"],
        "Let me think. The answer is 4."
    );
    assert_eq!(deepseek["content"][1]["text"], "2 + 2 = 4.");
    assert_eq!(deepseek["usage"]["cache_read_input_tokens"], 1920);
    assert_eq!(deepseek["usage"]["input_tokens"], 80);

    let openrouter = final_message_with(&backend("openrouter"), true);
    let calls: Vec<&Value> = openrouter["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(calls.len(), 2, "a new id is a new call, whatever its index");
    assert_eq!(calls[0]["input"], json!({"city": "NY"}));
    assert_eq!(calls[1]["input"], json!({"city": "SF"}));
    assert_eq!(openrouter["usage"]["cache_read_input_tokens"], 512);

    // Without thinking asked, reasoning is not the client's.
    let plain = final_message(&backend("deepseek"));
    assert_eq!(
        plain["content"],
        json!([{"type": "text", "text": "2 + 2 = 4."}])
    );
}

#[test]
fn a_tool_call_that_never_gets_a_name_is_left_out_and_a_legacy_call_kept() {
    let nameless = sse(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({"content": "done"}), Some("tool_calls")),
    ]);
    let message = final_message(&nameless);
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "done"}])
    );
    assert_eq!(
        message["stop_reason"], "end_turn",
        "no tool_use stop without a tool_use"
    );
    let legacy = sse(&[
        chunk(
            json!({"function_call": {"name": "Bash", "arguments": "{\"command\":"}}),
            None,
        ),
        chunk(
            json!({"function_call": {"arguments": "\"ls\"}"}}),
            Some("function_call"),
        ),
    ]);
    let message = final_message(&legacy);
    assert_eq!(message["content"][0]["name"], "Bash");
    assert_eq!(message["content"][0]["input"], json!({"command": "ls"}));
    assert_eq!(message["stop_reason"], "tool_use");
    let refused = sse(&[chunk(
        json!({"refusal": "I can't help with that."}),
        Some("content_filter"),
    )]);
    assert_eq!(
        final_message(&refused)["content"][0]["text"],
        "I can't help with that."
    );
}

#[test]
fn text_stream_with_usage_chunk_and_null_choices() {
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for word in ["Hello", ", ", "world", "!"] {
        chunks.push(chunk(json!({"content": word}), None));
    }
    chunks.push(chunk(json!({}), Some("stop")));
    chunks.push(json!({"id": "chatcmpl-9", "choices": null, "usage": {"prompt_tokens": 31, "completion_tokens": 4}}));
    let message = final_message(&sse(&chunks));
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "Hello, world!"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["output_tokens"], 4);
    assert_eq!(message["model"], "local-model");
    assert_eq!(message["id"], "msg_chatcmpl-9");
}

#[test]
fn a_tool_call_streamed_in_fragments_after_text() {
    let chunks = vec![
        chunk(json!({"content": "I'll run it."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"comm"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "and\": \"ls -la\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ];
    let message = final_message(&sse(&chunks));
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": "I'll run it."})
    );
    assert_eq!(
        message["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls -la"}})
    );
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn arguments_in_one_chunk_missing_index_and_no_done() {
    let chunks = [
        chunk(
            json!({"tool_calls": [{"id": "call_a", "function": {"name": "Read", "arguments": "{\"file_path\": \"/tmp/x\"}"}}]}),
            None,
        ),
        // Some backends report "stop" although they called a tool.
        chunk(json!({}), Some("stop")),
    ];
    let mut input = String::new();
    for c in &chunks {
        input.push_str(&format!("data: {c}\n\n"));
    }
    let message = final_message(&input);
    assert_eq!(message["content"][0]["name"], "Read");
    assert_eq!(
        message["content"][0]["input"],
        json!({"file_path": "/tmp/x"})
    );
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn parallel_calls_interleaved_become_sequential_blocks() {
    let chunks = vec![
        chunk(
            json!({"tool_calls": [
                {"index": 0, "id": "call_a", "function": {"name": "Read", "arguments": "{\"file_path\":"}},
                {"index": 1, "id": "call_b", "function": {"name": "Grep", "arguments": "{\"pattern\":"}}
            ]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": " \"TODO\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"a.rs\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ];
    let message = final_message(&sse(&chunks));
    let content = message["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["id"], "call_a");
    assert_eq!(content[0]["input"], json!({"file_path": "a.rs"}));
    assert_eq!(content[1]["id"], "call_b");
    assert_eq!(content[1]["input"], json!({"pattern": "TODO"}));
}

#[test]
fn reasoning_deltas_are_dropped_and_crlf_lines_read() {
    let chunks = [
        chunk(json!({"reasoning_content": "Let me think"}), None),
        chunk(json!({"reasoning": "more thought"}), None),
        chunk(json!({"content": "Answer"}), Some("length")),
    ];
    let mut input = String::new();
    for c in &chunks {
        input.push_str(&format!("data: {c}\r\n\r\n"));
    }
    input.push_str(": keep-alive comment\r\n\r\ndata: [DONE]\r\n\r\n");
    let message = final_message(&input);
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "Answer"}])
    );
    assert_eq!(message["stop_reason"], "max_tokens");
}

#[test]
fn an_empty_answer_that_finished_still_makes_a_valid_message() {
    let message = final_message(&sse(&[chunk(json!({}), Some("stop"))]));
    assert_eq!(message["content"], json!([{"type": "text", "text": ""}]));
    assert_eq!(message["stop_reason"], "end_turn");
}

/// The event types a translated stream produced, in order.
fn event_names(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect()
}

#[test]
fn what_is_not_a_complete_answer_ends_in_an_error_event() {
    let cut = format!(
        "data: {}\n\n",
        chunk(json!({"content": "half an ans"}), None)
    );
    for (input, kind) in [
        // Closed early: no finish_reason, no [DONE].
        (cut.as_str(), "overloaded_error"),
        // Nothing at all, garbage, or only [DONE].
        ("", "api_error"),
        ("<html>502 Bad Gateway</html>\n", "api_error"),
        ("data: not json\n\ndata: {\"foo\": 1}\n\n", "api_error"),
        ("data: [DONE]\n\n", "api_error"),
    ] {
        for size in [1, 3, 64, input.len().max(1)] {
            let output = translate(input, size);
            let names = event_names(&output);
            assert_eq!(
                names.last(),
                Some(&"error"),
                "{input:?} at {size}: {output}"
            );
            assert!(!names.contains(&"message_stop"), "{input:?}: {output}");
            assert!(output.contains(kind), "{input:?}: {output}");
        }
    }
    // Nothing before the error when nothing was translated: the proxy can fail over.
    assert_eq!(event_names(&translate("", 1)), ["error"]);
}

#[test]
fn an_error_chunk_becomes_an_error_event() {
    let input = format!(
        "data: {}\n\ndata: {}\n\n",
        chunk(json!({"content": "partial"}), None),
        json!({"error": {"message": "model crashed", "type": "server_error"}})
    );
    let message = accumulate(&translate(&input, 9));
    assert_eq!(message["error"]["type"], "api_error");
    assert_eq!(message["error"]["message"], "model crashed");
}

#[test]
fn fail_ends_the_stream_once() {
    let mut translator = StreamTranslator::new("m", 1);
    let started =
        translator.feed(format!("data: {}\n\n", chunk(json!({"content": "x"}), None)).as_bytes());
    assert!(started.starts_with("event: message_start"));
    let error = translator.fail("overloaded_error", "upstream went away");
    assert!(error.starts_with("event: error\n"));
    assert!(translator.is_done());
    assert_eq!(translator.fail("api_error", "again"), "");
    assert_eq!(translator.finish(), "");
}
