//! The framework's API writes, off its event loop: acknowledgements first, then pod status patches
//! coalesced per pod (at most one in flight per pod, the newest status wins), then events in
//! arrival order, all under one concurrency cap. [`Coalescer`] is the pure queue; [`Writes`] runs it on
//! an owned `JoinSet` the framework's loop polls.
//!
//! Why: writing each status, event and ACK one at a time, in turn with offers and pod events,
//! bounded the framework to a few pods per second. A status superseded before it is written is
//! never written (a task's STARTING and RUNNING usually become one patch), and the loop is free to
//! accept offers and acknowledge updates while writes are in flight.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use tokio::task::JoinSet;

/// Latest-value-wins queue with at most one value in flight per key. Keys become ready in the
/// order they were first pushed (a key re-pushed while queued keeps its place).
#[derive(Debug)]
pub struct Coalescer<K, V> {
    pending: HashMap<K, V>,
    ready: VecDeque<K>,
    in_flight: HashSet<K>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Coalescer {
            pending: HashMap::new(),
            ready: VecDeque::new(),
            in_flight: HashSet::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Coalescer<K, V> {
    /// Queues `value` for `key`, replacing a value of the same key not yet taken.
    pub fn push(&mut self, key: K, value: V) {
        let queued = self.pending.insert(key.clone(), value).is_some();
        if !queued && !self.in_flight.contains(&key) {
            self.ready.push_back(key);
        }
    }

    /// The next value to write, unless every pending key is in flight; its key is then in flight
    /// until [`Coalescer::done`].
    pub fn take(&mut self) -> Option<(K, V)> {
        while let Some(key) = self.ready.pop_front() {
            if let Some(value) = self.pending.remove(&key) {
                self.in_flight.insert(key.clone());
                return Some((key, value));
            }
        }
        None
    }

    /// The write of `key` finished; a value pushed meanwhile becomes ready.
    pub fn done(&mut self, key: &K) {
        if self.in_flight.remove(key) && self.pending.contains_key(key) {
            self.ready.push_back(key.clone());
        }
    }

    /// Values waiting (not in flight).
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    /// Removes a key's waiting value (the pod is gone); one in flight still finishes.
    pub fn forget(&mut self, key: &K) {
        self.pending.remove(key);
    }
}

/// A write to run: makes the future when started. (A closure, not a future, so a queue of them is
/// `Sync` and the framework holding it can be borrowed across awaits.)
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A [`Job`] from a closure making the write's future.
pub fn job<F, Fut>(make: F) -> Job
where
    F: FnOnce() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::new(move || Box::pin(make()))
}

/// Runs urgent, coalesced per-key and ordered jobs, in that priority, at most `limit` at once.
pub struct Writes {
    running: JoinSet<Option<String>>,
    urgent: VecDeque<Job>,
    keyed: Coalescer<String, Job>,
    ordered: VecDeque<Job>,
    limit: usize,
}

impl Writes {
    /// At most `limit` (≥ 1) writes at once.
    pub fn new(limit: usize) -> Writes {
        Writes {
            running: JoinSet::new(),
            urgent: VecDeque::new(),
            keyed: Coalescer::default(),
            ordered: VecDeque::new(),
            limit: limit.max(1),
        }
    }

    /// Queues a job that goes before any other queued one (acknowledgements: they unblock the
    /// agents' next updates and cost no store write).
    pub fn urgent(&mut self, job: Job) {
        self.urgent.push_back(job);
        self.pump();
    }

    /// Queues a write that supersedes any queued, not yet started write of the same `key`.
    pub fn keyed(&mut self, key: String, job: Job) {
        self.keyed.push(key, job);
        self.pump();
    }

    /// Queues a write run in the order queued (relative to other ordered writes' start).
    pub fn ordered(&mut self, job: Job) {
        self.ordered.push_back(job);
        self.pump();
    }

    /// Drops a key's queued write (one in flight finishes).
    pub fn forget(&mut self, key: &str) {
        self.keyed.forget(&key.to_string());
    }

    /// Writes queued or running.
    pub fn len(&self) -> usize {
        self.running.len() + self.urgent.len() + self.keyed.waiting() + self.ordered.len()
    }

    /// Nothing queued or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn pump(&mut self) {
        while self.running.len() < self.limit {
            // Status before events: a pod's Running status is what its users wait for.
            if let Some(job) = self.urgent.pop_front() {
                self.running.spawn(async move {
                    job().await;
                    None
                });
            } else if let Some((key, job)) = self.keyed.take() {
                self.running.spawn(async move {
                    job().await;
                    Some(key)
                });
            } else if let Some(job) = self.ordered.pop_front() {
                self.running.spawn(async move {
                    job().await;
                    None
                });
            } else {
                break;
            }
        }
    }

    /// Waits for one running write to finish and starts queued ones; pending forever when none
    /// runs (for `select!`).
    pub async fn next(&mut self) {
        match self.running.join_next().await {
            Some(Ok(Some(key))) => self.keyed.done(&key),
            Some(Ok(None)) => {}
            Some(Err(err)) => tracing::warn!(%err, "a framework write task failed"),
            None => std::future::pending::<()>().await,
        }
        self.pump();
    }

    /// Lets the writes in flight and queued finish (at shutdown, bounded by the caller).
    pub async fn drain(&mut self) {
        while !self.running.is_empty() {
            self.next().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_value_wins_and_keeps_its_place() {
        let mut c = Coalescer::default();
        c.push("a", 1);
        c.push("b", 1);
        c.push("a", 2);
        assert_eq!(c.take(), Some(("a", 2)));
        assert_eq!(c.take(), Some(("b", 1)));
        assert_eq!(c.take(), None);
    }

    #[test]
    fn one_in_flight_per_key() {
        let mut c = Coalescer::default();
        c.push("a", 1);
        assert_eq!(c.take(), Some(("a", 1)));
        c.push("a", 2);
        c.push("a", 3);
        assert_eq!(c.take(), None, "a is in flight");
        assert_eq!(c.waiting(), 1);
        c.done(&"a");
        assert_eq!(c.take(), Some(("a", 3)));
        c.done(&"a");
        assert_eq!(c.take(), None);
        assert_eq!(c.waiting(), 0);
    }

    #[test]
    fn forget_drops_the_waiting_value_only() {
        let mut c = Coalescer::default();
        c.push("a", 1);
        c.push("b", 1);
        c.forget(&"a");
        assert_eq!(c.take(), Some(("b", 1)));
        assert_eq!(c.take(), None);
        c.push("b", 2);
        c.forget(&"b");
        c.done(&"b");
        assert_eq!(c.take(), None);
    }

    #[tokio::test]
    async fn writes_run_under_the_cap_and_coalesce() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let ran = Arc::new(AtomicUsize::new(0));
        let mut w = Writes::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The first write blocks until released, so later ones queue.
        w.ordered(job(move || async move {
            let _ = rx.await;
        }));
        for _ in 0..3 {
            let ran = Arc::clone(&ran);
            w.keyed(
                "pod".into(),
                job(move || async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        assert_eq!(w.len(), 2, "one running, one coalesced write waiting");
        let _ = tx.send(());
        w.drain().await;
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(w.is_empty());
    }

    #[tokio::test]
    async fn urgent_then_keyed_then_ordered() {
        use std::sync::{Arc, Mutex};
        let order = Arc::new(Mutex::new(Vec::new()));
        let named = |name: &'static str| -> Job {
            let order = Arc::clone(&order);
            job(move || async move { order.lock().unwrap().push(name) })
        };
        let mut w = Writes::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        w.ordered(job(move || async move {
            let _ = rx.await;
        }));
        w.ordered(named("event"));
        w.keyed("pod".into(), named("status"));
        w.urgent(named("ack"));
        let _ = tx.send(());
        w.drain().await;
        assert_eq!(*order.lock().unwrap(), ["ack", "status", "event"]);
    }
}
