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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_remembered_by_model() {
        let signatures = Signatures::default();
        signatures.record("claude-opus-5-5", "EqQBxyz");
        signatures.record("claude-sonnet-5-5", "S0n");
        assert_eq!(
            signatures.signer("EqQBxyz").as_deref(),
            Some("claude-opus-5-5")
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
