//! The embedded durable store: etcd semantics (one global revision, MVCC history, CAS, watch, compaction)
//! on a single redb file, every acknowledged write fsynced.

mod tables;
mod watch;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::tables::{
    backend, backend_msg, list_at, list_latest, meta, COMPACTED, HISTORY, LATEST, META, REVISION,
};
use self::writer::{EventBatch, Op, Reply, Request, Writer};
use super::{Deleted, KeyValue, ListResult, Result, Revision, Storage, StorageError, WatchStream};

/// The file, inside the data directory, that holds the store.
pub const DATA_FILE: &str = "kumos.redb";

/// Queued writes beyond this make writers wait (backpressure on the single writer task).
const QUEUE_DEPTH: usize = 4096;
/// Committed transactions buffered for watchers (each holds its values, so keep it modest); a watcher
/// that falls further behind re-reads the log instead of losing events.
const EVENT_BUFFER: usize = 256;

/// Settings of the embedded store.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedConfig {
    /// Keep (at least) this many most recent revisions readable and compact older history automatically;
    /// `None` keeps all history until [`Storage::compact`] is called.
    pub compaction_window: Option<i64>,
    /// Bytes of pages the store caches in memory (`None`: [`DEFAULT_CACHE_BYTES`]). Pages not cached are
    /// read from the file, usually from the OS page cache.
    pub cache_bytes: Option<usize>,
}

/// The embedded store's page cache by default: 64 MiB (redb's own default, 1 GiB, would dominate the
/// server's resident memory).
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// A [`Storage`] backed by one redb file, with a single group-committing writer task.
pub struct EmbeddedStore {
    db: Arc<Database>,
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<EventBatch>,
    cancel: CancellationToken,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir/kumos.redb` and starts its writer task.
    ///
    /// Must be called from within a Tokio runtime (the writer task runs on it).
    pub fn open(dir: &Path, config: EmbeddedConfig) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(backend)?;
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = Database::builder()
            .set_cache_size(config.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES))
            .create(dir.join(DATA_FILE))
            .map_err(backend)?;
        let db = Arc::new(db);
        writer::init(&db)?;
        let (requests, requests_rx) = mpsc::channel(QUEUE_DEPTH);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let cancel = CancellationToken::new();
        let task = Writer {
            db: db.clone(),
            requests: requests_rx,
            events: events.clone(),
            cancel: cancel.clone(),
            compaction_window: config.compaction_window,
        };
        let handle = runtime.spawn(task.run());
        Ok(EmbeddedStore {
            db,
            requests,
            events,
            cancel,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Stops the writer after committing every write already queued, and ends all watch streams.
    /// Later writes fail; the file is released once the store and its streams are dropped.
    pub async fn close(&self) {
        self.cancel.cancel();
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            // A panicked writer has nothing left to stop; the error carries no more information.
            let _ = handle.await;
        }
    }

    async fn write(&self, op: Op) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        if self.cancel.is_cancelled() || self.requests.send(Request { op, reply }).await.is_err() {
            return Err(closed());
        }
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Runs a read transaction off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadTransaction) -> Result<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db.begin_read().map_err(backend)?))
            .await
            .unwrap_or_else(|e| Err(backend_msg(format!("embedded store read failed: {e}"))))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Cancelling makes the writer commit what is already queued and exit: it never outlives its work.
        self.cancel.cancel();
    }
}

fn closed() -> StorageError {
    backend_msg("embedded store is closed")
}

fn unexpected() -> StorageError {
    backend_msg("embedded store writer answered with the wrong kind of reply")
}

#[async_trait]
impl Storage for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |txn| {
            let latest = txn.open_table(LATEST).map_err(backend)?;
            let value = redb::ReadableTable::get(&latest, key.as_str()).map_err(backend)?;
            value
                .map(|v| tables::decode_latest(&key, v.value()))
                .transpose()
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<ListResult> {
        let (prefix, start) = (prefix.to_owned(), start.map(str::to_owned));
        self.read(move |txn| {
            let meta_table = txn.open_table(META).map_err(backend)?;
            let current = meta(&meta_table, REVISION)?;
            let compacted = meta(&meta_table, COMPACTED)?;
            let start = start.as_deref();
            let (items, more) = if revision == 0 || revision == current {
                list_latest(
                    &txn.open_table(LATEST).map_err(backend)?,
                    &prefix,
                    start,
                    limit,
                )?
            } else if revision > current {
                return Err(StorageError::FutureRevision {
                    requested: revision,
                    current,
                });
            } else if revision < compacted {
                return Err(StorageError::Compacted {
                    requested: revision,
                    compacted,
                });
            } else {
                let history = txn.open_table(HISTORY).map_err(backend)?;
                list_at(&history, &prefix, start, limit, revision)?
            };
            let served = if revision == 0 { current } else { revision };
            Ok(ListResult {
                items,
                revision: served,
                more,
            })
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        match self
            .write(Op::Create {
                key: key.to_owned(),
                value,
            })
            .await?
        {
            Reply::Kv(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        match self
            .write(Op::Update {
                key: key.to_owned(),
                value,
                expected,
            })
            .await?
        {
            Reply::Kv(kv) => Ok(kv),
            _ => Err(unexpected()),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        match self
            .write(Op::Delete {
                key: key.to_owned(),
                expected,
            })
            .await?
        {
            Reply::Deleted(d) => Ok(d),
            _ => Err(unexpected()),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.read(|txn| meta(&txn.open_table(META).map_err(backend)?, REVISION))
            .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::watch(
            self.db.clone(),
            &self.events,
            self.cancel.clone(),
            prefix,
            after,
        )
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.write(Op::Compact(revision)).await? {
            Reply::Compacted => Ok(()),
            _ => Err(unexpected()),
        }
    }
}
