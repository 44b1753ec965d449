//! Token usage read from responses as they pass, without holding them back.
//!
//! Streams: only `message_start` and `message_delta` events carry usage; every other line is
//! skipped after a prefix check, so the cost per chunk stays a scan for newlines.

use serde::Deserialize;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct UsageFields {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

impl UsageFields {
    fn input(&self) -> Option<u64> {
        self.input_tokens.map(|tokens| {
            tokens
                + self.cache_creation_input_tokens.unwrap_or(0)
                + self.cache_read_input_tokens.unwrap_or(0)
        })
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum UsageEvent {
    MessageStart { message: MessageWithUsage },
    MessageDelta { usage: UsageFields },
}

#[derive(Deserialize)]
struct MessageWithUsage {
    usage: UsageFields,
}

/// Follows an SSE stream chunk by chunk.
#[derive(Default)]
pub struct SseUsage {
    partial_line: Vec<u8>,
    usage: Usage,
}

impl SseUsage {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(newline);
            if self.partial_line.is_empty() {
                self.line(line);
            } else {
                let mut joined = std::mem::take(&mut self.partial_line);
                joined.extend_from_slice(line);
                self.line(&joined);
            }
            rest = &after[1..];
        }
        if !rest.is_empty() && self.partial_line.len() < 1 << 20 {
            self.partial_line.extend_from_slice(rest);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let head = &data[..data.len().min(48)];
        if !head.windows(9).any(|w| w == b"\"message_") {
            return;
        }
        match serde_json::from_slice::<UsageEvent>(data) {
            Ok(UsageEvent::MessageStart { message }) => {
                self.usage.input_tokens = message.usage.input();
                self.usage.output_tokens = message.usage.output_tokens;
            }
            Ok(UsageEvent::MessageDelta { usage }) => {
                if let Some(input) = usage.input() {
                    self.usage.input_tokens = Some(input);
                }
                if usage.output_tokens.is_some() {
                    self.usage.output_tokens = usage.output_tokens;
                }
            }
            Err(_) => {}
        }
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }
}

/// Usage of a complete non-streaming response body.
pub fn from_json(body: &[u8]) -> Usage {
    #[derive(Deserialize)]
    struct Body {
        usage: Option<UsageFields>,
        input_tokens: Option<u64>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body { usage: Some(u), .. }) => Usage {
            input_tokens: u.input(),
            output_tokens: u.output_tokens,
        },
        // count_tokens answers {"input_tokens": N}
        Ok(Body {
            input_tokens: Some(n),
            ..
        }) => Usage {
            input_tokens: Some(n),
            output_tokens: None,
        },
        _ => Usage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n";

    #[test]
    fn usage_survives_any_chunking() {
        for size in [1, 2, 3, 7, 64, STREAM.len()] {
            let mut sse = SseUsage::default();
            for chunk in STREAM.as_bytes().chunks(size) {
                sse.feed(chunk);
            }
            assert_eq!(
                sse.usage(),
                Usage {
                    input_tokens: Some(112),
                    output_tokens: Some(7)
                },
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn json_usage() {
        assert_eq!(
            from_json(br#"{"usage":{"input_tokens":3,"output_tokens":4}}"#),
            Usage {
                input_tokens: Some(3),
                output_tokens: Some(4)
            }
        );
        assert_eq!(from_json(br#"{"input_tokens":42}"#).input_tokens, Some(42));
        assert_eq!(from_json(b"garbage"), Usage::default());
    }
}
