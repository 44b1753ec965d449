//! What clients send that the proxy has never seen (see [`crate::wire::drift`]), kept
//! with when and from which client it first came, each reported once in the log.
//!
//! Cheap: a request is read for it when its client (`User-Agent`, i.e. a Claude Code
//! version) is new, and one request in [`EVERY`] otherwise — a new field in a new
//! version shows in its first request. Bounded: [`MAX_FEATURES`] features, [`MAX_CLIENTS`]
//! clients remembered.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::Serialize;

use crate::wire::drift::{self, Feature, Kind};

/// One request in this many is read even from a client already seen.
pub const EVERY: u64 = 64;
pub const MAX_FEATURES: usize = 200;
pub const MAX_CLIENTS: usize = 64;

/// An unknown feature, as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct UnknownFeature {
    /// `field`, `block`, `tool` or `beta`.
    pub kind: String,
    pub name: String,
    pub first_seen: DateTime<Utc>,
    /// The `User-Agent` it came with (`claude-cli/2.1.332 …`).
    pub client: Option<String>,
}

#[derive(Default)]
pub struct Drift {
    features: Mutex<BTreeMap<Feature, UnknownFeature>>,
    clients: Mutex<HashSet<String>>,
    requests: AtomicU64,
}

impl Drift {
    /// Reads `body` for what is new, when this request is one to read.
    pub fn check(&self, body: &[u8], headers: &HeaderMap) {
        let client = headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|c| c.chars().take(120).collect::<String>());
        let new_client = client.as_ref().is_some_and(|c| {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            clients.len() < MAX_CLIENTS && clients.insert(c.clone())
        });
        let sampled = self.requests.fetch_add(1, Ordering::Relaxed) % EVERY == 0;
        if !new_client && !sampled {
            return;
        }
        let betas = headers.get("anthropic-beta").and_then(|v| v.to_str().ok());
        let found = drift::unknown(body, betas);
        if found.is_empty() {
            return;
        }
        let mut features = self.features.lock().unwrap_or_else(|e| e.into_inner());
        for feature in found {
            if features.contains_key(&feature) || features.len() >= MAX_FEATURES {
                continue;
            }
            let kind = match feature.kind {
                Kind::Field => "field",
                Kind::Block => "block",
                Kind::Tool => "tool",
                Kind::Beta => "beta",
            };
            tracing::warn!(
                kind,
                name = %feature.name,
                client = client.as_deref().unwrap_or("?"),
                "a request carries something the proxy has never seen: Anthropic gets it unchanged, other targets go without it"
            );
            features.insert(
                feature.clone(),
                UnknownFeature {
                    kind: kind.to_owned(),
                    name: feature.name,
                    first_seen: Utc::now(),
                    client: client.clone(),
                },
            );
        }
    }

    /// Everything new seen so far.
    pub fn unknown(&self) -> Vec<UnknownFeature> {
        let features = self.features.lock().unwrap_or_else(|e| e.into_inner());
        features.values().cloned().collect()
    }
}
