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
}

/// Follows a Messages event stream.
#[derive(Default)]
pub struct Trace {
    lines: Lines,
    by_block: HashMap<u64, String>,
    tool_calls: Vec<String>,
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
    data: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl Trace {
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
        }
    }
}

/// What a whole Messages answer carried.
pub fn of_message(message: &[u8]) -> Carried {
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        content: Vec<Block>,
    }
    let Ok(message) = serde_json::from_slice::<Message>(message) else {
        return Carried::default();
    };
    let mut carried = Carried::default();
    for block in message.content {
        match block.kind.as_str() {
            "thinking" => carried
                .signatures
                .extend(block.signature.filter(|s| !s.is_empty())),
            "redacted_thinking" => carried.signatures.extend(block.data),
            "tool_use" => carried.tool_calls.extend(block.id),
            _ => {}
        }
    }
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
    }
}
