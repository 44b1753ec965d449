//! Server-sent events, read on a copy: the bytes a client receives stay exactly as the
//! upstream sent them, while the proxy follows what they say.
//!
//! Lines are framed by tokio-util's delimiter codec (lines split across chunks, a length
//! cap); this module knows what the lines mean: [`Lines`] for any SSE stream (the OpenAI
//! translator reads its `data:` lines), [`AnthropicEvents`] for a Messages stream — its
//! usage, its first event, and whether it ended as Anthropic ends one (`message_stop`, or
//! an `error` event).

use bytes::BytesMut;
use serde::Deserialize;
use tokio_util::codec::{AnyDelimiterCodec, Decoder};

use super::usage::{Usage, UsageFields};

/// Longest line followed; a longer one (no sane upstream sends one) is skipped whole.
const MAX_LINE: usize = 16 << 20;

/// Splits a byte stream into lines, chunk by chunk, without the `\n` or `\r\n`.
pub struct Lines {
    codec: AnyDelimiterCodec,
    pending: BytesMut,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            codec: AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), MAX_LINE),
            pending: BytesMut::new(),
        }
    }
}

impl Lines {
    /// Feeds a chunk; `line` sees every line it completes.
    pub fn feed(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(chunk);
        loop {
            match self.codec.decode(&mut self.pending) {
                Ok(Some(bytes)) => line(strip_cr(&bytes)),
                Ok(None) => break,
                // Over the cap: the codec drops the rest of that line by itself.
                Err(_) => continue,
            }
        }
    }

    /// The stream ended: a last line without its newline, if any.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if let Ok(Some(bytes)) = self.codec.decode_eof(&mut self.pending) {
            if !bytes.is_empty() {
                line(strip_cr(&bytes));
            }
        }
        self.pending.clear();
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A line's field and value: `event: message_stop` -> (`event`, `message_stop`). As the
/// SSE format says, one space after the colon is not part of the value. Comments
/// (`:` first) and blank lines have no field.
pub fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    if colon == 0 {
        return None;
    }
    let value = &line[colon + 1..];
    Some((&line[..colon], value.strip_prefix(b" ").unwrap_or(value)))
}

/// How an Anthropic event stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `message_stop`: the answer is complete.
    Stop,
    /// An `error` event: the upstream reported the failure itself.
    Error,
}

/// Follows an Anthropic Messages event stream.
#[derive(Default)]
pub struct AnthropicEvents {
    lines: Lines,
    /// The name of the event being read (from its `event:` line or its data's `type`).
    current: Option<String>,
    first: Option<String>,
    ending: Option<Ending>,
    /// The type of the error an `error` event reported (`overloaded_error`, …).
    error_kind: Option<String>,
    usage: Usage,
}

/// Just the `type` of an event's data.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(borrow, rename = "type")]
    kind: std::borrow::Cow<'a, str>,
}

/// An `error` event's data: `{"type":"error","error":{"type":"overloaded_error",…}}`.
#[derive(Deserialize)]
struct ErrorData<'a> {
    #[serde(borrow)]
    error: Typed<'a>,
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

impl AnthropicEvents {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(chunk, |line| self.line(line));
        self.lines = lines;
    }

    /// The name of the first complete event (`message_start`, `error`, `ping`, …).
    pub fn first_event(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// `Some` once the stream ended as Anthropic ends one.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// What an `error` event said went wrong, e.g. `overloaded_error`.
    pub fn error_kind(&self) -> Option<&str> {
        self.error_kind.as_deref()
    }

    fn line(&mut self, line: &[u8]) {
        if line.is_empty() {
            // A blank line dispatches the event.
            if let Some(name) = self.current.take() {
                match name.as_str() {
                    "message_stop" => self.ending = Some(Ending::Stop),
                    "error" => self.ending = Some(Ending::Error),
                    _ => {}
                }
                self.first.get_or_insert(name);
            }
            return;
        }
        match field(line) {
            Some((b"event", name)) => {
                self.current = Some(String::from_utf8_lossy(name).into_owned());
            }
            Some((b"data", data)) => self.data(data),
            _ => {}
        }
    }

    fn data(&mut self, data: &[u8]) {
        // Only a few events matter; the rest are skipped after a look at their start.
        let head = &data[..data.len().min(48)];
        let interesting = head.windows(9).any(|w| w == b"\"message_")
            || head.windows(7).any(|w| w == b"\"error\"");
        if self.current.is_none() || interesting {
            if let Ok(typed) = serde_json::from_slice::<Typed<'_>>(data) {
                self.current.get_or_insert_with(|| typed.kind.into_owned());
            } else if self.current.is_none() {
                self.current = Some("data".to_owned());
            }
        }
        if !interesting {
            return;
        }
        if self.current.as_deref() == Some("error") {
            if let Ok(error) = serde_json::from_slice::<ErrorData<'_>>(data) {
                self.error_kind = Some(error.error.kind.into_owned());
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn usage_and_ending_survive_any_chunking() {
        for size in [1, 2, 3, 7, 64, STREAM.len()] {
            let mut events = AnthropicEvents::default();
            for chunk in STREAM.as_bytes().chunks(size) {
                events.feed(chunk);
            }
            assert_eq!(
                events.usage(),
                Usage {
                    input_tokens: Some(112),
                    output_tokens: Some(7)
                },
                "chunk size {size}"
            );
            assert_eq!(events.first_event(), Some("message_start"));
            assert_eq!(events.ending(), Some(Ending::Stop), "chunk size {size}");
        }
    }

    #[test]
    fn a_stream_cut_before_message_stop_has_no_ending() {
        let cut = &STREAM[..STREAM.find("event: message_stop").unwrap()];
        let mut events = AnthropicEvents::default();
        events.feed(cut.as_bytes());
        assert_eq!(events.ending(), None);
        // The last event is complete only with its blank line.
        let mut events = AnthropicEvents::default();
        events.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n");
        assert_eq!(events.ending(), None);
    }

    #[test]
    fn an_error_event_first_and_events_without_event_lines() {
        let mut events = AnthropicEvents::default();
        events.feed(b"event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n");
        assert_eq!(events.first_event(), Some("error"));
        assert_eq!(events.ending(), Some(Ending::Error));
        assert_eq!(events.error_kind(), Some("overloaded_error"));
        let mut events = AnthropicEvents::default();
        events.feed(b": comment\n\ndata: {\"type\": \"message_start\", \"message\": {\"usage\": {\"input_tokens\": 3}}}\n\ndata: {\"type\": \"message_stop\"}\n\n");
        assert_eq!(events.first_event(), Some("message_start"));
        assert_eq!(events.ending(), Some(Ending::Stop));
    }

    #[test]
    fn lines_keep_the_last_line_without_a_newline() {
        let mut lines = Lines::default();
        let mut seen = Vec::new();
        lines.feed(b"data: a\r\ndata: b", |l| seen.push(l.to_vec()));
        lines.finish(|l| seen.push(l.to_vec()));
        assert_eq!(seen, [b"data: a".to_vec(), b"data: b".to_vec()]);
        assert_eq!(field(b"data:x"), Some((&b"data"[..], &b"x"[..])));
        assert_eq!(field(b": ping"), None);
    }
}
