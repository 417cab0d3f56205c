//! The watch cache of one resource: current objects, a bounded ring of recent events, and a broadcast of
//! new ones, all fed by one storage watch (relisting if that watch fails).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::cached::Cached;
use crate::resources::ResourceInfo;
use crate::storage::{KeyValue, Revision, Storage, StorageError, WatchEvent};

/// Watch cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Events kept for watches that resume from a resourceVersion.
    pub history: usize,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Events a slow client may fall behind before its watch is closed (it then re-watches).
    pub client_buffer: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            history: 10_000,
            bookmark_interval: Duration::from_secs(60),
            client_buffer: 4_096,
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The change.
    pub kind: EventType,
    /// The object after the change (for deletes: its last state, at the delete revision).
    pub object: Arc<Cached>,
    /// The object before the change, when there was one (shared with the previous event's object).
    pub prev: Option<Arc<Cached>>,
    /// The revision of the change.
    pub revision: Revision,
}

/// A message on the cache's broadcast.
#[derive(Debug, Clone)]
pub enum Message {
    /// A new event.
    Event(Arc<Event>),
    /// The cache relisted: history before this point is gone, so current watchers must end.
    Reset,
}

pub(super) struct State {
    pub objects: BTreeMap<String, Arc<Cached>>,
    pub events: VecDeque<Arc<Event>>,
    /// The latest revision the cache reflects.
    pub revision: Revision,
    /// Watches may resume from any revision ≥ this one.
    pub oldest: Revision,
}

/// The watch cache of one resource.
pub struct WatchCache {
    pub(super) resource: &'static ResourceInfo,
    pub(super) config: CacheConfig,
    state: Mutex<State>,
    pub(super) tx: broadcast::Sender<Message>,
    pub(super) shutdown: CancellationToken,
    follower: Mutex<Option<AbortOnDropHandle<()>>>,
}

impl WatchCache {
    /// Lists the resource prefix, then follows one storage watch from that revision. The follower task is
    /// owned by the cache and stops when `shutdown` is cancelled (or the cache is dropped).
    pub async fn start(
        storage: Arc<dyn Storage>,
        resource: &'static ResourceInfo,
        config: CacheConfig,
        shutdown: CancellationToken,
    ) -> Result<Arc<WatchCache>, StorageError> {
        let (objects, revision) = list_all(storage.as_ref(), resource).await?;
        let (tx, _) = broadcast::channel(config.client_buffer.max(16));
        let cache = Arc::new(WatchCache {
            resource,
            config,
            state: Mutex::new(State {
                objects,
                events: VecDeque::new(),
                revision,
                oldest: revision,
            }),
            tx,
            shutdown,
            follower: Mutex::new(None),
        });
        let task = tokio::spawn(follow(Arc::downgrade(&cache), storage, revision));
        *lock(&cache.follower) = Some(AbortOnDropHandle::new(task));
        Ok(cache)
    }

    /// Current objects (optionally of one namespace) in key order, and the revision they are current at.
    pub async fn snapshot(&self, namespace: Option<&str>) -> (Revision, Vec<Arc<Cached>>) {
        let state = self.lock();
        let prefix = namespace.map(|ns| self.resource.namespace_prefix(ns));
        let items = state
            .objects
            .iter()
            .filter(|(k, _)| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
            .map(|(_, v)| v.clone())
            .collect();
        (state.revision, items)
    }

    /// The latest revision the cache reflects.
    pub fn revision(&self) -> Revision {
        self.lock().revision
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn apply(&self, change: Change) {
        let Change {
            kind,
            key,
            object,
            stored_prev,
            revision,
        } = change;
        let object = Arc::new(object);
        let mut state = self.lock();
        let prev = match kind {
            EventType::Deleted => state.objects.remove(&key),
            _ => state.objects.insert(key, object.clone()),
        };
        // The cache follows the same watch as the store, so its copy is the previous value; decode the
        // store's only if the cache has none (it cannot, short of a bug).
        let prev = prev.or_else(|| {
            let p = stored_prev?;
            Cached::decode(self.resource, &p.value, p.mod_revision).map(Arc::new)
        });
        state.revision = state.revision.max(revision);
        let event = Arc::new(Event {
            kind,
            object,
            prev,
            revision,
        });
        state.events.push_back(event.clone());
        while state.events.len() > self.config.history {
            if let Some(dropped) = state.events.pop_front() {
                state.oldest = dropped.revision;
            }
        }
        // Sent under the lock so a watcher that snapshots and subscribes under the lock sees no gap.
        let _ = self.tx.send(Message::Event(event));
    }

    fn reset(&self, objects: BTreeMap<String, Arc<Cached>>, revision: Revision) {
        let mut state = self.lock();
        state.objects = objects;
        state.events.clear();
        state.revision = revision;
        state.oldest = revision;
        let _ = self.tx.send(Message::Reset);
    }
}

/// State is only touched in short, non-async critical sections, so a poisoned lock still holds consistent
/// data; recover it rather than propagate a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn list_all(
    storage: &dyn Storage,
    resource: &ResourceInfo,
) -> Result<(BTreeMap<String, Arc<Cached>>, Revision), StorageError> {
    let page = storage.list(&resource.key_prefix(), None, 0, 0).await?;
    let objects = page
        .items
        .iter()
        .filter_map(|kv| {
            let obj = Cached::decode(resource, &kv.value, kv.mod_revision)?;
            Some((kv.key.clone(), Arc::new(obj)))
        })
        .collect();
    Ok((objects, page.revision))
}

/// One storage change, decoded once, on its way into the cache.
struct Change {
    kind: EventType,
    key: String,
    object: Cached,
    /// The store's previous value, used only if the cache lacks one.
    stored_prev: Option<KeyValue>,
    revision: Revision,
}

fn to_change(resource: &ResourceInfo, event: WatchEvent) -> Option<Change> {
    let key = event.key().to_string();
    let revision = event.revision();
    let (kind, object, stored_prev) = match event {
        WatchEvent::Put { kv, prev } => {
            let kind = if prev.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            let object = Cached::decode(resource, &kv.value, kv.mod_revision)?;
            (kind, object, prev)
        }
        WatchEvent::Delete(d) => {
            let object = Cached::decode(resource, &d.prev.value, d.revision)?;
            (EventType::Deleted, object, Some(d.prev))
        }
    };
    Some(Change {
        kind,
        key,
        object,
        stored_prev,
        revision,
    })
}

/// The follower: one storage watch; on failure, relist and start over from the new revision.
async fn follow(
    cache: std::sync::Weak<WatchCache>,
    storage: Arc<dyn Storage>,
    mut revision: Revision,
) {
    let Some((resource, shutdown)) = cache.upgrade().map(|c| (c.resource, c.shutdown.clone()))
    else {
        return;
    };
    let prefix = resource.key_prefix();
    loop {
        let watch = tokio::select! {
            _ = shutdown.cancelled() => return,
            w = storage.watch(&prefix, revision) => w,
        };
        if let Ok(mut stream) = watch {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    n = stream.next() => n,
                };
                let Some(Ok(event)) = next else { break };
                let Some(cache) = cache.upgrade() else { return };
                revision = event.revision();
                if let Some(change) = to_change(resource, event) {
                    cache.apply(change);
                }
            }
        }
        // The watch ended or failed (e.g. compacted): back off briefly, relist, and resume.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if let Ok((objects, rev)) = list_all(storage.as_ref(), resource).await {
            let Some(cache) = cache.upgrade() else { return };
            if rev != revision {
                cache.reset(objects, rev);
            }
            revision = rev;
        }
    }
}
