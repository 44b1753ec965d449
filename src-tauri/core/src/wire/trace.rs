//! What an answer carries that the proxy remembers after it passed: the thinking
//! signatures of its blocks (bound to the model that wrote them) and the ids of the tool
//! calls it made (the next request answers them, and continues where they came from).
//! Read from an event stream as it passes, or from a whole message.

use std::collections::HashMap;

use serde::Deserialize;

use super::sse::{field, Lines};

/// What one answer carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Carried {
    /// Thinking signatures, and `redacted_thinking` blocks' data.
    pub signatures: Vec<String>,
    /// `tool_use` ids.
    pub tool_calls: Vec<String>,
    /// What it said, when it was followed for that ([`Trace::judging`]).
    pub content: Option<Content>,
}

/// An answer's content in brief, to judge whether it worked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Content {
    /// Characters of text.
    pub text_chars: usize,
    pub tool_uses: Vec<ToolUse>,
    pub stop_reason: Option<String>,
    pub output_tokens: Option<u64>,
}

/// A tool call as it came: its name, and its input as JSON text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolUse {
    pub name: String,
    pub input: String,
}

/// Follows a Messages event stream.
#[derive(Default)]
pub struct Trace {
    lines: Lines,
    by_block: HashMap<u64, String>,
    tool_calls: Vec<String>,
    /// Followed for its content too (index -> tool use, as it arrives).
    content: Option<(Content, HashMap<u64, usize>)>,
}

#[derive(Deserialize)]
struct ContentDelta {
    index: u64,
    delta: DeltaBody,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaBody {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: StopDelta,
    #[serde(default)]
    usage: Option<OutputUsage>,
}

#[derive(Deserialize, Default)]
struct StopDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct OutputUsage {
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Delta {
    index: u64,
    delta: Signed,
}

#[derive(Deserialize)]
struct Signed {
    signature: String,
}

#[derive(Deserialize)]
struct Start {
    index: u64,
    content_block: Block,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl Trace {
    /// A trace that follows the answer's content too, to judge it.
    pub fn judging() -> Trace {
        Trace {
            content: Some(Default::default()),
            ..Trace::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(chunk, |line| self.line(line));
        self.lines = lines;
    }

    fn line(&mut self, line: &[u8]) {
        let Some((b"data", data)) = field(line) else {
            return;
        };
        let has = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
        if let Some((content, tools)) = &mut self.content {
            if has(b"\"content_block_delta\"") && !has(b"\"signature_delta\"") {
                if let Ok(delta) = serde_json::from_slice::<ContentDelta>(data) {
                    match delta.delta {
                        DeltaBody::TextDelta { text } => content.text_chars += text.chars().count(),
                        DeltaBody::InputJsonDelta { partial_json } => {
                            if let Some(&at) = tools.get(&delta.index) {
                                content.tool_uses[at].input.push_str(&partial_json);
                            }
                        }
                        DeltaBody::Other => {}
                    }
                }
                return;
            }
            if has(b"\"message_delta\"") {
                if let Ok(delta) = serde_json::from_slice::<MessageDelta>(data) {
                    content.stop_reason = delta.delta.stop_reason.or(content.stop_reason.take());
                    if let Some(tokens) = delta.usage.and_then(|u| u.output_tokens) {
                        content.output_tokens = Some(tokens);
                    }
                }
                return;
            }
            if has(b"\"content_block_start\"") && has(b"\"tool_use\"") {
                if let Ok(start) = serde_json::from_slice::<Start>(data) {
                    if start.content_block.kind == "tool_use" {
                        tools.insert(start.index, content.tool_uses.len());
                        content.tool_uses.push(ToolUse {
                            name: start.content_block.name.unwrap_or_default(),
                            input: String::new(),
                        });
                    }
                }
            }
        }
        if has(b"\"signature_delta\"") {
            if let Ok(delta) = serde_json::from_slice::<Delta>(data) {
                self.by_block
                    .entry(delta.index)
                    .or_default()
                    .push_str(&delta.delta.signature);
            }
        } else if has(b"\"content_block_start\"")
            && (has(b"\"tool_use\"") || has(b"\"redacted_thinking\""))
        {
            if let Ok(start) = serde_json::from_slice::<Start>(data) {
                match start.content_block.kind.as_str() {
                    "tool_use" => self.tool_calls.extend(start.content_block.id),
                    "redacted_thinking" => {
                        if let Some(data) = start.content_block.data {
                            self.by_block.insert(start.index, data);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// What the stream carried.
    pub fn carried(self) -> Carried {
        Carried {
            signatures: self
                .by_block
                .into_values()
                .filter(|s| !s.is_empty())
                .collect(),
            tool_calls: self.tool_calls,
            content: self.content.map(|(content, _)| content),
        }
    }
}

/// What a whole Messages answer carried.
pub fn of_message(message: &[u8]) -> Carried {
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        content: Vec<Block>,
        #[serde(default)]
        stop_reason: Option<String>,
        #[serde(default)]
        usage: Option<OutputUsage>,
    }
    let Ok(message) = serde_json::from_slice::<Message>(message) else {
        return Carried::default();
    };
    let mut carried = Carried::default();
    let mut content = Content {
        stop_reason: message.stop_reason,
        output_tokens: message.usage.and_then(|u| u.output_tokens),
        ..Content::default()
    };
    for block in message.content {
        match block.kind.as_str() {
            "thinking" => carried
                .signatures
                .extend(block.signature.filter(|s| !s.is_empty())),
            "redacted_thinking" => carried.signatures.extend(block.data),
            "text" => content.text_chars += block.text.unwrap_or_default().chars().count(),
            "tool_use" => {
                carried.tool_calls.extend(block.id);
                content.tool_uses.push(ToolUse {
                    name: block.name.unwrap_or_default(),
                    input: block.input.map(|i| i.to_string()).unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    carried.content = Some(content);
    carried
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_tool_calls_of_a_stream_and_a_message() {
        let stream = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"xyz\"}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"R3d\"}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"Bash\",\"input\":{}}}\n\n";
        let mut trace = Trace::default();
        for chunk in stream.as_bytes().chunks(5) {
            trace.feed(chunk);
        }
        let mut carried = trace.carried();
        carried.signatures.sort();
        assert_eq!(carried.signatures, ["EqQBxyz", "R3d"]);
        assert_eq!(carried.tool_calls, ["toolu_9"]);
        let message = of_message(
            br#"{"content":[{"type":"thinking","thinking":"","signature":"S0n"},{"type":"tool_use","id":"call_1","name":"Read","input":{}}]}"#,
        );
        assert_eq!(message.signatures, ["S0n"]);
        assert_eq!(message.tool_calls, ["call_1"]);
        assert_eq!(message.content.unwrap().tool_uses[0].name, "Read");
        let judged = "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":\"Bash\",\"input\":{}}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\":\"}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"ls\\\"}\"}}\n\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":12}}\n\n";
        let mut trace = Trace::judging();
        trace.feed(judged.as_bytes());
        let content = trace.carried().content.unwrap();
        assert_eq!(
            content.tool_uses,
            [ToolUse {
                name: "Bash".into(),
                input: "{\"command\":\"ls\"}".into()
            }]
        );
        assert_eq!(
            (content.stop_reason.as_deref(), content.output_tokens),
            (Some("tool_use"), Some(12))
        );
    }
}
