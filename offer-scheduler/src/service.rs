//! The master's I/O shell: owns the [`Master`] state machine behind a short-held mutex, delivers
//! its effects (stream records, persistence), and runs the allocation/timer loop.
//!
//! Effects are delivered while the lock is held: sends go to unbounded channels (never block),
//! so every stream sees events in exactly the order the state machine produced them.

use crate::master::{Config, Effect, Master, Now};
use bytes::Bytes;
use futures::StreamExt;
use rand::SeedableRng;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where the master keeps its records (frameworks, agents, tasks, weights, quotas).
#[async_trait::async_trait]
pub trait MasterStore: Send + Sync + 'static {
    /// Every record under the master's prefix.
    async fn load(&self) -> Result<Vec<(String, Json)>, StoreError>;
    /// Writes (`Some`) or deletes (`None`) one record.
    async fn put(&self, key: &str, value: Option<&Json>) -> Result<(), StoreError>;
}

/// A store failure, with the backend's message.
#[derive(Debug, thiserror::Error)]
#[error("master store: {0}")]
pub struct StoreError(pub String);

/// Runtime settings of the shell.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The state machine's settings.
    pub master: Config,
    /// Time between allocation cycles (Mesos `--allocation_interval`, default 1 s); events such
    /// as a new agent or a REVIVE also trigger a cycle.
    pub allocation_interval: Duration,
    /// Shared secret agents present as a bearer token.
    pub agent_secret: String,
}

/// A record on a stream: one RecordIO frame.
pub type Frame = Bytes;

/// Encodes one RecordIO record: `<length>\n<json>` (serde_json never emits newlines).
pub fn recordio(event: &Json) -> Frame {
    let body = event.to_string();
    Bytes::from(format!("{}\n{}", body.len(), body))
}

/// Store writes of one persistence batch in flight at once.
const PERSIST_PARALLEL: usize = 64;

/// A message to the persistence writer.
enum PersistOp {
    /// Write (`Some`) or delete (`None`) a record.
    Put(String, Option<Json>),
    /// Signals once everything queued before it is in the store.
    Flush(tokio::sync::oneshot::Sender<()>),
}

struct Shared {
    master: Mutex<Master>,
    streams: Mutex<HashMap<String, mpsc::UnboundedSender<Frame>>>,
    persist: mpsc::UnboundedSender<PersistOp>,
    allocate: Notify,
    cfg: ServiceConfig,
}

/// A cloneable handle to the running master.
#[derive(Clone)]
pub struct MasterHandle {
    shared: Arc<Shared>,
}

/// The running master's background work; `shutdown` stops it.
pub struct MasterService {
    /// Handle for the HTTP layer and in-process clients.
    pub handle: MasterHandle,
    tracker: TaskTracker,
    token: CancellationToken,
}

impl MasterService {
    /// Recovers the master from `store` (or starts a fresh one) and starts its loops.
    pub async fn start(
        cfg: ServiceConfig,
        store: Arc<dyn MasterStore>,
        token: CancellationToken,
    ) -> Result<MasterService, StoreError> {
        let records = store.load().await?;
        let now = Now::current();
        let master = match Master::recover(cfg.master.clone(), &records, now) {
            Some(m) => {
                tracing::info!(id = m.id(), "master recovered from the store");
                m
            }
            None => Master::new(cfg.master.clone(), uuid::Uuid::new_v4().to_string(), now),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            master: Mutex::new(master),
            streams: Mutex::new(HashMap::new()),
            persist: tx,
            allocate: Notify::new(),
            cfg,
        });
        let handle = MasterHandle { shared };
        // A fresh master persists its identity at once.
        if records.is_empty() {
            handle.apply(|m, _| m.update_weights(std::iter::empty()));
        }
        let tracker = TaskTracker::new();
        tracker.spawn(persist_loop(store, rx, token.clone()));
        tracker.spawn(allocation_loop(handle.clone(), token.clone()));
        tracker.close();
        Ok(MasterService {
            handle,
            tracker,
            token,
        })
    }

    /// Stops the loops and waits for pending writes to reach the store.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.handle
            .shared
            .streams
            .lock()
            .map(|mut s| s.clear())
            .ok();
        self.tracker.wait().await;
    }
}

async fn persist_loop(
    store: Arc<dyn MasterStore>,
    mut rx: mpsc::UnboundedReceiver<PersistOp>,
    token: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            n = rx.recv() => n,
            _ = token.cancelled() => {
                // Drain what was already produced before stopping.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = next else { break };
        // Later writes of the same key supersede earlier ones still queued.
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut latest: HashMap<String, Option<Json>> = HashMap::new();
        let mut order = Vec::new();
        let mut flushes = Vec::new();
        for op in batch {
            match op {
                PersistOp::Put(k, v) => {
                    if latest.insert(k.clone(), v).is_none() {
                        order.push(k);
                    }
                }
                PersistOp::Flush(done) => flushes.push(done),
            }
        }
        // Keys in a batch are distinct, so their writes may run concurrently (the store
        // group-commits them); batches stay in order.
        let writes: Vec<(String, Option<Json>)> = order
            .into_iter()
            .map(|k| {
                let v = latest.remove(&k).flatten();
                (k, v)
            })
            .collect();
        futures::stream::iter(writes)
            .for_each_concurrent(PERSIST_PARALLEL, |(k, v)| {
                let store = &store;
                async move {
                    if let Err(err) = store.put(&k, v.as_ref()).await {
                        tracing::error!(%err, key = k, "cannot persist master state");
                    }
                }
            })
            .await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn allocation_loop(handle: MasterHandle, token: CancellationToken) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut interval = tokio::time::interval(handle.shared.cfg.allocation_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = interval.tick() => {}
            _ = handle.shared.allocate.notified() => {}
        }
        handle.apply(|m, now| {
            m.tick(now);
            m.allocate(now, &mut rng);
        });
    }
}

impl MasterHandle {
    /// Runs `f` on the state machine and delivers its effects before releasing the lock.
    pub fn apply<R>(&self, f: impl FnOnce(&mut Master, Now) -> R) -> R {
        let mut master = match self.shared.master.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let r = f(&mut master, Now::current());
        let effects = master.take_effects();
        self.deliver(effects);
        drop(master);
        r
    }

    fn deliver(&self, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        let mut streams = match self.shared.streams.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        for e in effects {
            match e {
                Effect::Send { stream, event } => {
                    if let Some(tx) = streams.get(&stream) {
                        let _ = tx.send(recordio(&event));
                    }
                }
                Effect::Close { stream } => {
                    streams.remove(&stream);
                }
                Effect::Persist { key, value } => {
                    let _ = self.shared.persist.send(PersistOp::Put(key, value));
                }
            }
        }
    }

    /// Registers a new stream; records addressed to `id` arrive on the receiver.
    pub fn open_stream(&self, id: &str) -> mpsc::UnboundedReceiver<Frame> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.shared.streams.lock() {
            s.insert(id.to_string(), tx);
        }
        rx
    }

    /// The client of stream `id` went away (or the master closed it).
    pub fn stream_gone(&self, id: &str) {
        if let Ok(mut s) = self.shared.streams.lock() {
            s.remove(id);
        }
        self.apply(|m, now| m.stream_closed(id, now));
    }

    /// Waits until every state change made so far is in the store (registrations are answered
    /// only once durable, as Mesos' registrar does).
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shared.persist.send(PersistOp::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Asks for an allocation cycle soon (batched with any already pending).
    pub fn trigger_allocation(&self) {
        self.shared.allocate.notify_one();
    }

    /// Shell settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.cfg
    }
}
