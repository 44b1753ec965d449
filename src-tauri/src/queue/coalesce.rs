//! Identical in-flight non-streaming requests share one upstream call: the first runs it,
//! the others wait for its answer. The key covers the body, the client's credentials and
//! the route, so only truly identical requests meet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use sha2::{Digest, Sha256};

/// A complete answer that can be handed to several clients.
#[derive(Debug, Clone)]
pub struct Buffered {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type SharedAnswer = Shared<BoxFuture<'static, Arc<Buffered>>>;

pub struct Coalescer {
    in_flight: Arc<Mutex<HashMap<[u8; 32], SharedAnswer>>>,
    /// How many requests joined another's call so far.
    joined: tokio::sync::watch::Sender<usize>,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer {
            in_flight: Arc::default(),
            joined: tokio::sync::watch::channel(0).0,
        }
    }
}

pub fn key(body: &[u8], headers: &HeaderMap, route: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update([0]);
    for name in crate::proxy::headers::CREDENTIAL_HEADERS {
        if let Some(value) = headers.get(name) {
            hash.update(value.as_bytes());
        }
        hash.update([0]);
    }
    hash.update(body);
    hash.finalize().into()
}

impl Coalescer {
    /// Runs `work` unless an identical request already runs; either way, its answer.
    /// Returns whether this caller joined another's call.
    pub async fn run(
        &self,
        key: [u8; 32],
        work: impl FnOnce() -> BoxFuture<'static, Buffered>,
    ) -> (Arc<Buffered>, bool) {
        let (shared, joined) = {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(shared) => (shared.clone(), true),
                None => {
                    let in_flight = self.in_flight.clone();
                    let future = work();
                    let shared = async move {
                        let answer = Arc::new(future.await);
                        in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&key);
                        answer
                    }
                    .boxed()
                    .shared();
                    map.insert(key, shared.clone());
                    (shared, false)
                }
            }
        };
        if joined {
            self.joined.send_modify(|n| *n += 1);
        }
        (shared.await, joined)
    }

    /// Follows how many requests joined another's call.
    pub fn joined(&self) -> tokio::sync::watch::Receiver<usize> {
        self.joined.subscribe()
    }
}
