//! Which model signed which thinking block. Thinking blocks are bound to the model that
//! wrote them (Anthropic, "What's new in Claude Opus 5.5": "Thinking blocks are tied to
//! the model and the conversation"); a signature is opaque, so the proxy remembers,
//! for every thinking block it relayed from Anthropic, the model that produced it. When a
//! conversation moves to another model (a step-down under a cap, a return from a local
//! model), the blocks another model signed are dropped before it reaches Anthropic.
//!
//! Bounded: the oldest entries are forgotten past [`CAPACITY`]; a block the proxy never
//! saw (signed before it started) is kept as it is.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Signatures remembered at once (a few MB at most).
pub const CAPACITY: usize = 50_000;

#[derive(Clone, Default)]
pub struct Signatures(Arc<Mutex<Known>>);

#[derive(Default)]
struct Known {
    signer: HashMap<u64, Arc<str>>,
    order: VecDeque<u64>,
}

fn key(signature: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    signature.hash(&mut hasher);
    hasher.finish()
}

impl Signatures {
    /// `model` produced the block signed `signature` (or a `redacted_thinking` block
    /// whose data this is).
    pub fn record(&self, model: &str, signature: &str) {
        if signature.is_empty() {
            return;
        }
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = key(signature);
        if known.signer.insert(key, Arc::from(model)).is_none() {
            known.order.push_back(key);
        }
        while known.order.len() > CAPACITY {
            if let Some(oldest) = known.order.pop_front() {
                known.signer.remove(&oldest);
            }
        }
    }

    /// The model that signed `signature`, when the proxy relayed it.
    pub fn signer(&self, signature: &str) -> Option<Arc<str>> {
        let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.signer.get(&key(signature)).cloned()
    }

    /// Every signature in a whole Messages answer (`content[]` thinking blocks).
    pub fn record_message(&self, model: &str, message: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Message<'a> {
            #[serde(borrow, default)]
            content: Vec<Block<'a>>,
        }
        #[derive(serde::Deserialize)]
        struct Block<'a> {
            #[serde(borrow, default)]
            signature: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            data: Option<std::borrow::Cow<'a, str>>,
            #[serde(rename = "type", borrow, default)]
            kind: std::borrow::Cow<'a, str>,
        }
        let Ok(message) = serde_json::from_slice::<Message<'_>>(message) else {
            return;
        };
        for block in message.content {
            match block.kind.as_ref() {
                "thinking" => self.record(model, block.signature.as_deref().unwrap_or("")),
                "redacted_thinking" => self.record(model, block.data.as_deref().unwrap_or("")),
                _ => {}
            }
        }
    }
}

/// Collects the signatures of a Messages event stream as it passes: `signature_delta`s
/// (concatenated per block) and `redacted_thinking` blocks' data.
#[derive(Default)]
pub struct StreamSignatures {
    lines: crate::wire::sse::Lines,
    by_block: HashMap<u64, String>,
}

impl StreamSignatures {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.feed(chunk, |line| self.line(line));
        self.lines = lines;
    }

    fn line(&mut self, line: &[u8]) {
        let Some((b"data", data)) = crate::wire::sse::field(line) else {
            return;
        };
        let has = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
        if has(b"\"signature_delta\"") {
            #[derive(serde::Deserialize)]
            struct Delta {
                index: u64,
                delta: Signed,
            }
            #[derive(serde::Deserialize)]
            struct Signed {
                signature: String,
            }
            if let Ok(delta) = serde_json::from_slice::<Delta>(data) {
                self.by_block
                    .entry(delta.index)
                    .or_default()
                    .push_str(&delta.delta.signature);
            }
        } else if has(b"\"redacted_thinking\"") {
            #[derive(serde::Deserialize)]
            struct Start {
                index: u64,
                content_block: Redacted,
            }
            #[derive(serde::Deserialize)]
            struct Redacted {
                data: String,
            }
            if let Ok(start) = serde_json::from_slice::<Start>(data) {
                self.by_block.insert(start.index, start.content_block.data);
            }
        }
    }

    /// Hands what the stream carried to `signatures`, as signed by `model`.
    pub fn record(self, signatures: &Signatures, model: &str) {
        for signature in self.by_block.values() {
            signatures.record(model, signature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_of_streams_and_messages_are_remembered_by_model() {
        let signatures = Signatures::default();
        let stream = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"xyz\"}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"R3d\"}}\n\n";
        let mut tap = StreamSignatures::default();
        for chunk in stream.as_bytes().chunks(5) {
            tap.feed(chunk);
        }
        tap.record(&signatures, "claude-opus-5-5");
        assert_eq!(
            signatures.signer("EqQBxyz").as_deref(),
            Some("claude-opus-5-5")
        );
        assert_eq!(signatures.signer("R3d").as_deref(), Some("claude-opus-5-5"));
        signatures.record_message(
            "claude-sonnet-5-5",
            br#"{"content":[{"type":"thinking","thinking":"","signature":"S0n"},{"type":"text","text":"hi"}]}"#,
        );
        assert_eq!(
            signatures.signer("S0n").as_deref(),
            Some("claude-sonnet-5-5")
        );
        assert_eq!(signatures.signer("unknown"), None);
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_capacity() {
        let signatures = Signatures::default();
        for i in 0..=CAPACITY {
            signatures.record("m", &i.to_string());
        }
        assert_eq!(signatures.signer("0"), None);
        assert!(signatures.signer(&CAPACITY.to_string()).is_some());
    }
}
