//! The request queue: waiting for quota instead of failing, per-provider concurrency in
//! priority order, and retries with backoff. Async jobs are kept by the store and run by
//! the pipeline.
//!
//! Imports: `config`, `quota` (to wait for it), `types`.

pub mod backoff;
mod gate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use gate::{Gate, Permit, Priority};

use crate::quota::QuotaMonitor;
use crate::types::QuotaState;

/// How a wait for the quota ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The quota left `critical`.
    Recovered,
    /// `max_wait` passed with the quota still critical.
    TimedOut,
}

/// Shared by every request; cheap to clone.
#[derive(Clone, Default)]
pub struct Queue {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tickets: AtomicU64,
    gates: Mutex<HashMap<String, (Option<usize>, Gate)>>,
    waiting: WaitingCount,
}

/// How many requests wait for the quota now (a `watch`, so the UI and tests can follow).
struct WaitingCount(watch::Sender<usize>);

impl Default for WaitingCount {
    fn default() -> Self {
        WaitingCount(watch::channel(0).0)
    }
}

/// Decrements the waiting count however the wait ends (the client may hang up).
struct Waiting<'a>(&'a WaitingCount);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Queue {
    /// A number that orders requests by arrival.
    pub fn ticket(&self) -> u64 {
        self.inner.tickets.fetch_add(1, Ordering::Relaxed)
    }

    /// The gate of `provider`, with `limit` concurrent requests (`None`: unlimited).
    pub fn gate(&self, provider: &str, limit: Option<usize>) -> Gate {
        let mut gates = self
            .inner
            .gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match gates.get(provider) {
            Some((known, gate)) if *known == limit => gate.clone(),
            _ => {
                let gate = Gate::new(limit);
                gates.insert(provider.to_owned(), (limit, gate.clone()));
                gate
            }
        }
    }

    /// Requests in flight at `provider` and waiting at its gate, if it has a gate.
    pub fn load(&self, provider: &str) -> Option<(usize, usize)> {
        let gates = self
            .inner
            .gates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        gates.get(provider).map(|(_, gate)| gate.load())
    }

    pub fn waiting(&self) -> watch::Receiver<usize> {
        self.inner.waiting.0.subscribe()
    }

    /// Waits until the quota is no longer critical (a 429's reset passing counts), at most
    /// `max_wait`. Dropping the future (the client hung up) leaves the queue at once.
    pub async fn wait_for_quota(&self, quota: &QuotaMonitor, max_wait: Duration) -> Released {
        let mut rx = quota.subscribe();
        if rx.borrow().state != QuotaState::Critical {
            return Released::Recovered;
        }
        self.inner.waiting.0.send_modify(|n| *n += 1);
        let _waiting = Waiting(&self.inner.waiting);
        let waited = tokio::time::timeout(max_wait, async {
            rx.wait_for(|s| s.state != QuotaState::Critical)
                .await
                .is_ok()
        })
        .await;
        match waited {
            Ok(_) => Released::Recovered,
            Err(_) => Released::TimedOut,
        }
    }
}
