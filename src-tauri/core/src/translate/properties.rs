//! Property tests: random and mutated real inputs never panic the parsing and translating
//! code, and what comes out is always a valid message, a valid event stream or an
//! Anthropic-shaped error.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::request::{to_openai, Limits};
use super::response::to_anthropic;
use super::stream::StreamTranslator;
use crate::wire::sse::{AnthropicEvents, Lines};
use crate::wire::summary::MessagesSummary;

const CLAUDE_CODE: &str = include_str!("../../../../tests/fixtures/claude-code-request.json");

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-z_]{0,8}".prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("role".to_owned()),
                    Just("content".to_owned()),
                    Just("text".to_owned()),
                    Just("tool_use_id".to_owned()),
                    Just("input".to_owned()),
                    Just("choices".to_owned()),
                    Just("message".to_owned()),
                    Just("delta".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`-th node (in walk order) of `value` with `with`.
fn replace_nth(value: &mut Value, pick: &mut usize, with: &Value) -> bool {
    if *pick == 0 {
        *value = with.clone();
        return true;
    }
    *pick -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_nth(v, pick, with)),
        Value::Object(map) => map.values_mut().any(|v| replace_nth(v, pick, with)),
        _ => false,
    }
}

/// The real Claude Code request with a few of its nodes replaced by anything.
fn mutated_claude_code() -> impl Strategy<Value = Value> {
    let real: Value = serde_json::from_str(CLAUDE_CODE).unwrap_or_default();
    prop::collection::vec((0usize..4000, any_json()), 1..4).prop_map(move |edits| {
        let mut request = real.clone();
        for (mut pick, with) in edits {
            replace_nth(&mut request, &mut pick, &with);
        }
        request
    })
}

/// An OpenAI stream as backends send it, with some chunks replaced by anything.
fn mutated_openai_stream() -> impl Strategy<Value = Vec<u8>> {
    let chunks = vec![
        json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi "}}]}),
        json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "Bash", "arguments": "{\"comm"}}]}}]}),
        json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "and\": \"ls\"}"}}]}}]}),
        json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
    ];
    (
        prop::collection::vec((0usize..5, any_json()), 0..3),
        any::<bool>(),
        0usize..6,
    )
        .prop_map(move |(edits, done, cut)| {
            let mut chunks = chunks.clone();
            for (at, with) in edits {
                chunks[at] = with;
            }
            let mut text: String = chunks[..cut.min(chunks.len())]
                .iter()
                .map(|c| format!("data: {c}\n\n"))
                .collect();
            if done {
                text.push_str("data: [DONE]\n\n");
            }
            text.into_bytes()
        })
}

/// Checks a translated stream: a sequence of well-formed events that ends exactly once,
/// in `message_stop` or `error`, with `message_start` first unless it is only an error.
fn assert_valid_anthropic_stream(output: &str) {
    let mut names = Vec::new();
    let mut lines = Lines::default();
    let mut current = None;
    let mut check = |line: &[u8]| {
        let line = std::str::from_utf8(line).unwrap_or_default();
        if let Some(name) = line.strip_prefix("event: ") {
            current = Some(name.to_owned());
        } else if let Some(data) = line.strip_prefix("data: ") {
            let parsed: Value = serde_json::from_str(data).unwrap_or_default();
            let name = current.take().unwrap_or_default();
            assert_eq!(parsed["type"], name.as_str(), "{output}");
            names.push(name);
        }
    };
    lines.feed(output.as_bytes(), &mut check);
    lines.finish(&mut check);
    let last = names.last().map(String::as_str);
    assert!(
        matches!(last, Some("message_stop" | "error")),
        "ends with {last:?}: {output}"
    );
    let terminal = names
        .iter()
        .filter(|n| matches!(n.as_str(), "message_stop" | "error"))
        .count();
    assert_eq!(terminal, 1, "{output}");
    if names.len() > 1 {
        assert_eq!(names[0], "message_start", "{output}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), value in any_json()) {
        let _ = MessagesSummary::parse(&bytes);
        let text = value.to_string();
        if let Err(error) = MessagesSummary::parse(text.as_bytes()) {
            prop_assert_eq!(error.kind, "invalid_request_error");
        }
    }

    #[test]
    fn any_request_translates_or_is_refused_in_words(request in prop_oneof![mutated_claude_code(), any_json()]) {
        let limits = Limits { context_window: Some(32_768), input_tokens: 20_000, images: true };
        match to_openai(&request, "local-model", limits) {
            Ok(translated) => {
                prop_assert!(translated["messages"].is_array());
                prop_assert_eq!(&translated["model"], "local-model");
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
        let _ = crate::wire::tokens::estimate(&serde_json::to_vec(&request).unwrap_or_default());
    }

    #[test]
    fn any_completion_becomes_a_message_or_an_error(completion in any_json(), text in ".{0,20}") {
        let real = json!({"id": "c", "choices": [{"finish_reason": "stop", "message": {"content": text}}]});
        for candidate in [completion, real] {
            if let Ok(message) = to_anthropic(&candidate, "m", true) {
                prop_assert_eq!(&message["type"], "message");
                prop_assert!(message["content"].as_array().is_some_and(|c| !c.is_empty()));
                prop_assert!(message["stop_reason"].is_string());
            }
        }
    }

    #[test]
    fn any_stream_translates_into_a_valid_event_sequence(
        input in prop_oneof![mutated_openai_stream(), prop::collection::vec(any::<u8>(), 0..256)],
        split in 1usize..64,
    ) {
        let mut translator = StreamTranslator::new("m", 10);
        let mut output = String::new();
        for piece in input.chunks(split) {
            output.push_str(&translator.feed(piece));
        }
        output.push_str(&translator.finish());
        assert_valid_anthropic_stream(&output);
        let mut events = AnthropicEvents::default();
        events.feed(output.as_bytes());
        prop_assert!(events.ending().is_some());
    }

    #[test]
    fn following_any_bytes_as_events_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024), split in 1usize..64) {
        let mut events = AnthropicEvents::default();
        for piece in bytes.chunks(split) {
            events.feed(piece);
        }
        let _ = (events.first_event(), events.ending(), events.usage());
    }
}
