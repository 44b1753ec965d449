//! Identical non-streaming requests in flight share one upstream call: the first starts
//! it, the others wait for its answer.
//!
//! Identical means everything that decides the answer: path and query, every header the
//! client sent (credentials included, so two keys never share), the body, and the route.
//! The call runs in a task of its own that lives as long as someone waits for it: a
//! waiter that hangs up just leaves; when the last one leaves, the call is cancelled
//! (its upstream connection closed) and forgotten, so nobody later joins a dead call.
//!
//! Hand-written: a shared future (`futures::Shared`) keeps running in the map after every
//! client left, and the caching crates answer later identical requests too, which a proxy
//! must not do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use bytes::Bytes;
use http::StatusCode;

use super::prepare::Prepared;
use super::{Answer, AnswerBody};
use crate::wire::ApiError;

type Key = [u8; 32];

/// The calls in flight, by key; each entry names its flight so a finished one removes
/// only itself.
type Flights = Mutex<HashMap<Key, (u64, Weak<Flight>)>>;

pub struct Coalescer {
    flights: Arc<Flights>,
    next_id: AtomicU64,
    /// How many requests joined another's call so far.
    joined: watch::Sender<usize>,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer {
            flights: Arc::default(),
            next_id: AtomicU64::new(0),
            joined: watch::channel(0).0,
        }
    }
}

/// One shared call. Every waiter holds it; the last to drop it cancels the call.
struct Flight {
    key: Key,
    id: u64,
    flights: Weak<Flights>,
    answer: watch::Receiver<Option<Arc<Whole>>>,
    task: AbortHandle,
}

/// A non-streaming answer, whole, as every waiter gets a copy of it.
struct Whole {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    target: Option<String>,
}

impl Whole {
    fn of(answer: Answer) -> Whole {
        match answer.body {
            AnswerBody::Full(body) => Whole {
                status: answer.status,
                headers: answer.headers,
                body,
                target: answer.target,
            },
            // Non-streaming answers are read whole before they are committed.
            AnswerBody::Events(_) | AnswerBody::Raw(_) => {
                Whole::of(Answer::error(&ApiError::bad_gateway(
                    "the upstream streamed an answer to a non-streaming request",
                )))
            }
        }
    }

    fn copy(&self, shared: bool) -> Answer {
        Answer {
            status: self.status,
            headers: self.headers.clone(),
            body: AnswerBody::Full(self.body.clone()),
            target: self.target.clone(),
            shared,
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(flights) = self.flights.upgrade() {
            forget(&flights, &self.key, self.id);
        }
    }
}

fn lock(flights: &Flights) -> MutexGuard<'_, HashMap<Key, (u64, Weak<Flight>)>> {
    flights.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the entry for `key` if it is still flight `id`'s.
fn forget(flights: &Flights, key: &Key, id: u64) {
    let mut map = lock(flights);
    if map.get(key).is_some_and(|(entry, _)| *entry == id) {
        map.remove(key);
    }
}

/// What decides a request's answer, hashed.
fn key(prepared: &Prepared) -> Key {
    let mut hash = Sha256::new();
    for candidate in &prepared.decision.chain {
        hash.update(candidate.target.as_bytes());
        hash.update([0]);
    }
    hash.update([1]);
    hash.update(prepared.path_and_query.as_bytes());
    hash.update([0]);
    hash_headers(&mut hash, &prepared.headers);
    hash.update(prepared.body.bytes());
    hash.finalize().into()
}

/// Every header but the ones that describe the connection, in a fixed order.
fn hash_headers(hash: &mut Sha256, headers: &HeaderMap) {
    let mut pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "keep-alive" | "transfer-encoding"
            )
        })
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    pairs.sort_unstable();
    for (name, value) in pairs {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(value);
        hash.update([0]);
    }
    hash.update([1]);
}

impl Coalescer {
    /// Follows how many requests joined another's call.
    pub fn joined(&self) -> watch::Receiver<usize> {
        self.joined.subscribe()
    }

    /// How many shared calls are in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }

    fn flight(&self, prepared: &Arc<Prepared>) -> (Arc<Flight>, bool) {
        let key = key(prepared);
        let mut map = lock(&self.flights);
        if let Some(flight) = map.get(&key).and_then(|(_, weak)| weak.upgrade()) {
            return (flight, true);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        let work = prepared.clone();
        let flights = Arc::downgrade(&self.flights);
        let task = tokio::spawn(async move {
            let answer = work.answer(None).await;
            // Done: later requests start a call of their own.
            if let Some(flights) = flights.upgrade() {
                forget(&flights, &key, id);
            }
            let _ = tx.send(Some(Arc::new(Whole::of(answer))));
        });
        let flight = Arc::new(Flight {
            key,
            id,
            flights: Arc::downgrade(&self.flights),
            answer: rx,
            task: task.abort_handle(),
        });
        map.insert(key, (id, Arc::downgrade(&flight)));
        (flight, false)
    }
}

/// The answer of `prepared`'s call, shared with identical requests in flight.
pub(super) async fn coalesced(prepared: Arc<Prepared>) -> Answer {
    let coalescer = &prepared.core.coalescer;
    let (flight, joined) = coalescer.flight(&prepared);
    if joined {
        tracing::debug!("joined an identical request in flight");
        coalescer.joined.send_modify(|n| *n += 1);
    }
    let mut answer = flight.answer.clone();
    let shared = match answer.wait_for(Option::is_some).await {
        Ok(ready) => ready.clone(),
        Err(_) => None,
    };
    drop(flight);
    match shared {
        Some(whole) => whole.copy(joined),
        None => Answer::error(&ApiError::bad_gateway(
            "the shared upstream call ended without an answer",
        )),
    }
}
