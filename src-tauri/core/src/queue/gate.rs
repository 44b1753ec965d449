//! A per-provider concurrency limit that lets waiters through by priority, then in the
//! order they arrived — so a burst released when the quota recovers does not start a new
//! 429 storm, and interactive work goes before background chores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Lower runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Someone is waiting at Claude Code.
    Interactive = 0,
    /// Haiku-class chores: titles, summaries.
    Background = 1,
    /// Async jobs from `/v1/queue/messages`.
    Batch = 2,
}

struct Waiter {
    priority: Priority,
    ticket: u64,
    wake: oneshot::Sender<Permit>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.ticket) == (other.priority, other.ticket)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    // BinaryHeap is a max-heap: the best waiter (lowest priority value, then ticket) is greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.priority, other.ticket).cmp(&(self.priority, self.ticket))
    }
}

struct Inner {
    limit: Option<usize>,
    in_use: usize,
    waiters: BinaryHeap<Waiter>,
}

/// Cheap to clone; all clones share the limit.
#[derive(Clone)]
pub struct Gate(Arc<Mutex<Inner>>);

/// A slot; released when dropped (for a stream: when the stream ends).
pub struct Permit(Option<Gate>);

impl Gate {
    pub fn new(limit: Option<usize>) -> Gate {
        Gate(Arc::new(Mutex::new(Inner {
            limit,
            in_use: 0,
            waiters: BinaryHeap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a slot. `ticket` orders waiters of the same priority (arrival order).
    pub async fn acquire(&self, priority: Priority, ticket: u64) -> Permit {
        let receiver = {
            let mut inner = self.lock();
            let free = inner.limit.is_none_or(|limit| inner.in_use < limit);
            if free && inner.waiters.is_empty() {
                inner.in_use += 1;
                return Permit(Some(self.clone()));
            }
            let (wake, receiver) = oneshot::channel();
            inner.waiters.push(Waiter {
                priority,
                ticket,
                wake,
            });
            receiver
        };
        self.dispatch();
        match receiver.await {
            Ok(permit) => permit,
            // The gate itself went away: run without a limit rather than never.
            Err(_) => Permit(None),
        }
    }

    /// Hands free slots to the best waiters still waiting.
    fn dispatch(&self) {
        loop {
            let mut inner = self.lock();
            if inner.limit.is_some_and(|limit| inner.in_use >= limit) {
                return;
            }
            let Some(waiter) = inner.waiters.pop() else {
                return;
            };
            inner.in_use += 1;
            drop(inner);
            if let Err(permit) = waiter.wake.send(Permit(Some(self.clone()))) {
                // The waiter left (client hung up): its slot goes back.
                drop(permit);
            }
        }
    }

    /// Requests in flight, and waiting.
    pub fn load(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.in_use, inner.waiters.len())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(gate) = self.0.take() {
            gate.lock().in_use -= 1;
            gate.dispatch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_go_by_priority_then_arrival_within_the_limit() {
        let gate = Gate::new(Some(1));
        let first = gate.acquire(Priority::Interactive, 0).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (ticket, priority) in [
            (1, Priority::Batch),
            (2, Priority::Background),
            (3, Priority::Interactive),
            (4, Priority::Background),
            (5, Priority::Interactive),
        ] {
            let (gate, tx) = (gate.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire(priority, ticket).await;
                tx.send(ticket).unwrap();
                drop(permit);
            }));
        }
        // Everyone is queued behind the first permit.
        while gate.load().1 < 5 {
            tokio::task::yield_now().await;
        }
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        let order: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(order, [3, 5, 2, 4, 1]);
        assert_eq!(gate.load(), (0, 0));
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_gives_its_turn_away() {
        let gate = Gate::new(Some(1));
        let first = gate.acquire(Priority::Interactive, 0).await;
        let leaving = tokio::spawn({
            let gate = gate.clone();
            async move { gate.acquire(Priority::Interactive, 1).await }
        });
        while gate.load().1 < 1 {
            tokio::task::yield_now().await;
        }
        leaving.abort();
        let _ = leaving.await;
        drop(first);
        let next = gate.acquire(Priority::Batch, 2).await;
        assert_eq!(gate.load(), (1, 0));
        drop(next);
        assert_eq!(gate.load(), (0, 0));
    }
}
