//! A Chat Completions stream -> a valid Anthropic event sequence.
//!
//! `message_start`, then blocks one at a time (`content_block_start`, deltas,
//! `content_block_stop`), `message_delta` with the stop reason and usage, `message_stop` —
//! however the backend fragments: missing tool-call `index`, arguments in one chunk or
//! many, parallel calls interleaved (keyed as OpenAI defines them: a new `id` is a new
//! call even at an `index` seen before; buffered calls follow in `index` order), a usage
//! chunk with no choices (cached prompt tokens reported as `cache_read_input_tokens`,
//! apart from `input_tokens`, as Anthropic counts them), reasoning deltas
//! (`reasoning_content`, `reasoning`: thinking blocks when the client asked for thinking,
//! dropped otherwise), a legacy `function_call`, a `refusal`, `[DONE]` missing after a
//! `finish_reason`. Anthropic blocks cannot interleave, so only one tool call streams
//! live; calls that start while it is incomplete are buffered and follow it. A tool call
//! that never gets a name is not passed on: Claude Code could not run it.
//!
//! What is not a complete answer never looks like one: a stream that ends with neither a
//! `finish_reason` nor `[DONE]`, one with no completion chunk at all (empty, garbage), or
//! an `error` chunk ends in an Anthropic `error` event instead of `message_stop`.

use serde_json::{json, Value};

use super::response::sanitize;
use super::{stop_reason, tool_id};
use crate::wire::sse::{field, Lines};

/// Translates one stream. Feed it the upstream bytes; it returns Anthropic SSE text.
pub struct StreamTranslator {
    model: String,
    input_tokens: u64,
    lines: Lines,
    /// A completion chunk arrived (the stream is in the Chat Completions format).
    saw_chunk: bool,
    message_id: Option<String>,
    /// Index of the next Anthropic content block.
    next_block: usize,
    open: Option<Open>,
    tools: Vec<ToolCall>,
    finish_reason: Option<String>,
    output_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    /// The client asked for thinking: reasoning deltas become thinking blocks.
    thinking: bool,
    done: bool,
}

enum Open {
    Text(usize),
    Thinking,
    /// The live tool call: position in `tools`.
    Tool(usize),
}

struct ToolCall {
    /// The upstream's `index`, when it sends one.
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
    /// Arguments already sent as `input_json_delta`s (for the live call).
    sent: usize,
    /// Emitted as a whole block already.
    emitted: bool,
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

impl StreamTranslator {
    /// `model` is shown until the upstream names its own; `input_tokens` is the estimate
    /// reported in `message_start` until the upstream's usage arrives.
    pub fn new(model: &str, input_tokens: u64) -> Self {
        StreamTranslator {
            model: model.to_owned(),
            input_tokens,
            lines: Lines::default(),
            saw_chunk: false,
            message_id: None,
            next_block: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            output_tokens: None,
            prompt_tokens: None,
            cached_tokens: None,
            thinking: false,
            done: false,
        }
    }

    /// Reasoning deltas become thinking blocks (the client asked for thinking).
    pub fn with_thinking(mut self, thinking: bool) -> Self {
        self.thinking = thinking;
        self
    }

    /// Whether `message_stop` (or an error) was already emitted.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds upstream bytes; returns the Anthropic events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> String {
        let mut out = String::new();
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(chunk, |line| self.line(line, &mut out));
        self.lines = lines;
        out
    }

    /// The upstream stream ended: closes the message if it was complete (a
    /// `finish_reason` or `[DONE]` came), else ends it with an `error` event.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        let mut lines = std::mem::take(&mut self.lines);
        lines.finish(|line| self.line(line, &mut out));
        if self.done {
            return out;
        }
        if !self.saw_chunk {
            out.push_str(&self.fail(
                "api_error",
                "the upstream stream held no chat completion chunk (empty, or not in the Chat Completions format)",
            ));
        } else if self.finish_reason.is_none() {
            out.push_str(&self.fail(
                "overloaded_error",
                "the upstream stream ended before the answer was complete (no finish_reason, no [DONE])",
            ));
        } else {
            self.close_message(&mut out);
        }
        out
    }

    /// The upstream failed mid-stream: an Anthropic `error` event ends the stream.
    pub fn fail(&mut self, kind: &str, message: &str) -> String {
        if self.done {
            return String::new();
        }
        self.done = true;
        event(
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        )
    }

    fn line(&mut self, line: &[u8], out: &mut String) {
        if self.done {
            return;
        }
        let Some((b"data", data)) = field(line) else {
            return;
        };
        if data == b"[DONE]" {
            if self.saw_chunk {
                self.close_message(out);
            } else {
                out.push_str(&self.fail(
                    "api_error",
                    "the upstream stream ended ([DONE]) without any chat completion chunk",
                ));
            }
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            tracing::debug!("skipping a stream line that is not JSON");
            return;
        };
        if !chunk.is_object() {
            return;
        }
        self.chunk(&chunk, out);
    }

    fn chunk(&mut self, chunk: &Value, out: &mut String) {
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream reported an error")
                .to_owned();
            out.push_str(&self.fail("api_error", &message));
            return;
        }
        if chunk.get("choices").is_none() && chunk.get("usage").is_none() {
            tracing::debug!("skipping a stream chunk that is not a chat completion chunk");
            return;
        }
        self.saw_chunk = true;
        self.ensure_started(chunk, out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.prompt_tokens = usage
                .get("prompt_tokens")
                .and_then(Value::as_u64)
                .or(self.prompt_tokens);
            self.output_tokens = usage
                .get("completion_tokens")
                .and_then(Value::as_u64)
                .or(self.output_tokens);
            self.cached_tokens = super::cached_tokens(usage).or(self.cached_tokens);
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(reasoning) = super::reasoning_of(delta).filter(|_| self.thinking) {
            self.reasoning(reasoning, out);
        }
        let text = delta
            .get("content")
            .and_then(Value::as_str)
            .or_else(|| delta.get("refusal").and_then(Value::as_str))
            .filter(|t| !t.is_empty());
        if let Some(text) = text {
            self.text(text, out);
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                self.tool_fragment(call, out);
            }
        }
        if let Some(call) = delta.get("function_call").filter(|c| c.is_object()) {
            // The legacy form: one call, no id, no index.
            self.tool_fragment(&json!({"index": 0, "function": call}), out);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn ensure_started(&mut self, chunk: &Value, out: &mut String) {
        if self.message_id.is_some() {
            return;
        }
        let id = chunk.get("id").and_then(Value::as_str).unwrap_or("stream");
        let id = format!("msg_{}", sanitize(id));
        if let Some(model) = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            self.model = model.to_owned();
        }
        out.push_str(&event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": 1}}}),
        ));
        self.message_id = Some(id);
    }

    fn reasoning(&mut self, text: &str, out: &mut String) {
        if !matches!(self.open, Some(Open::Thinking)) {
            if matches!(self.open, Some(Open::Tool(_))) && !self.live_tool_complete() {
                return;
            }
            self.close_block(out);
            self.open_block(
                out,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
            self.open = Some(Open::Thinking);
        }
        out.push_str(&event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next_block - 1,
                "delta": {"type": "thinking_delta", "thinking": text}}),
        ));
    }

    fn text(&mut self, text: &str, out: &mut String) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            Some(Open::Tool(_)) if !self.live_tool_complete() => {
                // Text while a tool call is still arriving: keep it for after the call.
                tracing::debug!("text interleaved with an unfinished tool call; appended later");
                return self.defer_text(text);
            }
            _ => {
                self.close_block(out);
                let index = self.open_block(out, json!({"type": "text", "text": ""}));
                self.open = Some(Open::Text(index));
                index
            }
        };
        out.push_str(&event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    /// Keeps text for a text block after the buffered calls (an entry with no id).
    fn defer_text(&mut self, text: &str) {
        self.tools.push(ToolCall {
            index: None,
            id: String::new(),
            name: String::new(),
            arguments: text.to_owned(),
            sent: 0,
            emitted: false,
        });
    }

    fn live_tool_complete(&self) -> bool {
        match self.open {
            Some(Open::Tool(i)) => serde_json::from_str::<Value>(&self.tools[i].arguments).is_ok(),
            _ => true,
        }
    }

    fn tool_fragment(&mut self, call: &Value, out: &mut String) {
        let index = call.get("index").and_then(Value::as_u64);
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let function = call.get("function");
        let name = function
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");

        // Deferred text entries have no id; every call has one.
        // An id names a call; an index names one only until a new id comes with it.
        let existing = self.tools.iter().rposition(|t| {
            !t.id.is_empty()
                && match (index, id) {
                    (_, Some(id)) => t.id == tool_id(Some(id), "", 0),
                    (Some(i), None) => t.index == Some(i),
                    _ => false,
                }
        });
        // No index and no id: a continuation of the most recent call.
        let existing = existing.or_else(|| {
            (index.is_none() && id.is_none())
                .then(|| self.tools.iter().rposition(|t| !t.id.is_empty()))
                .flatten()
        });
        let position = match existing {
            Some(position) => position,
            None => {
                let message_id = self.message_id.clone().unwrap_or_default();
                let count = self.tools.iter().filter(|t| !t.id.is_empty()).count();
                self.tools.push(ToolCall {
                    index,
                    id: tool_id(id, &message_id, count),
                    name: name.unwrap_or("").to_owned(),
                    arguments: String::new(),
                    sent: 0,
                    emitted: false,
                });
                self.tools.len() - 1
            }
        };
        if let Some(name) = name {
            if self.tools[position].name.is_empty() {
                self.tools[position].name = name.to_owned();
            }
        }
        self.tools[position].arguments.push_str(arguments);

        match self.open {
            Some(Open::Tool(live)) if live == position => self.send_arguments(position, out),
            Some(Open::Tool(_)) if !self.live_tool_complete() => {} // buffered
            _ => {
                // A call starts streaming once its name is known.
                if self.tools[position].emitted || self.tools[position].name.is_empty() {
                    return;
                }
                self.close_block(out);
                self.flush_buffered_before(position, out);
                self.start_tool(position, out);
            }
        }
    }

    fn start_tool(&mut self, position: usize, out: &mut String) {
        let tool = &self.tools[position];
        let block = json!({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}});
        self.open_block(out, block);
        self.open = Some(Open::Tool(position));
        self.tools[position].emitted = true;
        self.send_arguments(position, out);
    }

    fn send_arguments(&mut self, position: usize, out: &mut String) {
        let index = self.next_block - 1;
        let tool = &mut self.tools[position];
        if tool.sent < tool.arguments.len() {
            let fragment = &tool.arguments[tool.sent..];
            out.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": fragment}}),
            ));
            tool.sent = tool.arguments.len();
        }
    }

    /// Emits, whole, the buffered calls (and deferred text) that came before `position`.
    fn flush_buffered_before(&mut self, position: usize, out: &mut String) {
        for i in 0..position {
            let tool = &self.tools[i];
            // A call still without a name waits for it (or is left out at the end).
            if !tool.emitted && (tool.id.is_empty() || !tool.name.is_empty()) {
                self.emit_whole(i, out);
            }
        }
    }

    fn emit_whole(&mut self, i: usize, out: &mut String) {
        self.tools[i].emitted = true;
        if self.tools[i].id.is_empty() {
            let text = self.tools[i].arguments.clone();
            let index = self.open_block(out, json!({"type": "text", "text": ""}));
            out.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
            ));
        } else {
            let tool = &self.tools[i];
            let block = json!({"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}});
            let arguments = tool.arguments.clone();
            let index = self.open_block(out, block);
            if !arguments.is_empty() {
                out.push_str(&event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                ));
            }
        }
        out.push_str(&event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": self.next_block - 1}),
        ));
    }

    fn open_block(&mut self, out: &mut String, block: Value) -> usize {
        let index = self.next_block;
        self.next_block += 1;
        out.push_str(&event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    fn close_block(&mut self, out: &mut String) {
        if self.open.take().is_some() {
            // A thinking block closes like any other.
            out.push_str(&event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.next_block - 1}),
            ));
        }
    }

    fn close_message(&mut self, out: &mut String) {
        if self.done {
            return;
        }
        self.ensure_started(&Value::Null, out);
        self.close_block(out);
        let nameless = self
            .tools
            .iter()
            .filter(|t| !t.id.is_empty() && !t.emitted && t.name.is_empty())
            .count();
        if nameless > 0 {
            tracing::warn!(nameless, "tool calls without a name were left out");
        }
        // Calls still to come go in the order the model numbered them.
        let mut rest: Vec<usize> = (0..self.tools.len())
            .filter(|&i| !self.tools[i].emitted)
            .filter(|&i| self.tools[i].id.is_empty() || !self.tools[i].name.is_empty())
            .collect();
        rest.sort_by_key(|&i| (self.tools[i].index.unwrap_or(u64::MAX), i));
        for i in rest {
            self.emit_whole(i, out);
        }
        if self.next_block == 0 {
            // Anthropic clients expect at least one block.
            self.open_block(out, json!({"type": "text", "text": ""}));
            out.push_str(&event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
        }
        let has_tools = self.tools.iter().any(|t| !t.id.is_empty() && t.emitted);
        let mut usage = json!({"output_tokens": self.output_tokens.unwrap_or(0)});
        if let Some(input) = self.prompt_tokens {
            let cached = self.cached_tokens.unwrap_or(0).min(input);
            usage["input_tokens"] = json!(input - cached);
            if self.cached_tokens.is_some() {
                usage["cache_read_input_tokens"] = json!(cached);
            }
        }
        out.push_str(&event(
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish_reason.as_deref(), has_tools), "stop_sequence": null},
                "usage": usage}),
        ));
        out.push_str(&event("message_stop", json!({"type": "message_stop"})));
        self.done = true;
    }
}

#[cfg(test)]
mod tests;
