//! The single writer task: group commit of queued writes into one durable redb transaction per batch.
//!
//! Every write goes through one task so revisions are assigned in commit order without locks, and a burst
//! of concurrent writes costs one fsync instead of one each. Replies are sent only after the commit is
//! durable, and committed events are broadcast (in revision order) before the replies.

use std::collections::BTreeSet;
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::tables::{
    backend, backend_msg, encode_latest, encode_put, encode_tombstone, is_put, meta, COMPACTED,
    HISTORY, LATEST, LOG, META, REVISION,
};
use crate::storage::{Deleted, KeyValue, Revision, StorageError, WatchEvent};

/// At most this many queued writes share one transaction (bounds the latency of the first of them).
const MAX_BATCH: usize = 256;

/// One write asked of the writer task.
pub(super) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact(Revision),
}

/// The result of one [`Op`].
pub(super) enum Reply {
    Kv(KeyValue),
    Deleted(Deleted),
    Compacted,
}

/// A queued write and where to send its result.
pub(super) struct Request {
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<Result<Reply, StorageError>>,
}

/// Committed events of one transaction, in revision order.
pub(super) type EventBatch = Arc<[WatchEvent]>;

/// What the writer task needs.
pub(super) struct Writer {
    pub(super) db: Arc<Database>,
    pub(super) requests: mpsc::Receiver<Request>,
    pub(super) events: broadcast::Sender<EventBatch>,
    pub(super) cancel: CancellationToken,
    /// Keep this many revisions (automatic compaction), if set.
    pub(super) compaction_window: Option<i64>,
}

impl Writer {
    /// Serves write requests until cancelled, then answers whatever is still queued and returns.
    pub(super) async fn run(mut self) {
        loop {
            let first = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                req = self.requests.recv() => match req {
                    Some(req) => req,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.requests.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
        }
        // Stop accepting, but still commit what callers already queued: none of them waits forever.
        self.requests.close();
        let mut batch = Vec::new();
        while let Some(req) = self.requests.recv().await {
            batch.push(req);
            if batch.len() == MAX_BATCH {
                self.commit(std::mem::take(&mut batch)).await;
            }
        }
        if !batch.is_empty() {
            self.commit(batch).await;
        }
    }

    /// Commits one batch durably, broadcasts its events, then answers each request.
    async fn commit(&self, batch: Vec<Request>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        let db = self.db.clone();
        let window = self.compaction_window;
        // redb commits block on fsync: keep them off the async worker threads.
        let outcome = tokio::task::spawn_blocking(move || apply_batch(&db, ops, window))
            .await
            .unwrap_or_else(|e| Err(backend_msg(format!("embedded store writer failed: {e}"))));
        match outcome {
            Ok((results, events)) => {
                if !events.is_empty() {
                    // No receivers is fine: nobody watches.
                    let _ = self.events.send(events.into());
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(backend_msg(msg.clone())));
                }
            }
        }
    }
}

type BatchOutcome = (Vec<Result<Reply, StorageError>>, Vec<WatchEvent>);

/// Applies a batch in one durable transaction: per-op results (logical failures don't abort the batch)
/// and the committed events. An `Err` means nothing was committed.
fn apply_batch(
    db: &Database,
    ops: Vec<Op>,
    window: Option<i64>,
) -> Result<BatchOutcome, StorageError> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate).map_err(backend)?;
    let mut results = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    {
        let mut tables = Tables::open(&txn)?;
        for op in ops {
            results.push(tables.apply(op, &mut events)?);
        }
        if let Some(window) = window {
            tables.auto_compact(window)?;
        }
        tables.store_meta()?;
    }
    txn.commit().map_err(backend)?;
    Ok((results, events))
}

/// Creates the tables and the initial revision of a fresh store.
pub(super) fn init(db: &Database) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(backend)?;
    {
        let mut tables = Tables::open(&txn)?;
        if tables.revision == 0 {
            tables.revision = super::tables::INITIAL_REVISION;
            tables.store_meta()?;
        }
    }
    txn.commit().map_err(backend)
}

/// The open tables of one write transaction and its revision counters (written back by
/// [`Tables::store_meta`] before commit).
struct Tables<'t> {
    meta: Table<'t, &'static str, i64>,
    latest: Table<'t, &'static str, &'static [u8]>,
    history: Table<'t, (&'static str, i64), &'static [u8]>,
    log: Table<'t, i64, &'static str>,
    revision: Revision,
    compacted: Revision,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StorageError> {
        let meta_table = txn.open_table(META).map_err(backend)?;
        let revision = meta(&meta_table, REVISION)?;
        let compacted = meta(&meta_table, COMPACTED)?;
        Ok(Tables {
            meta: meta_table,
            latest: txn.open_table(LATEST).map_err(backend)?,
            history: txn.open_table(HISTORY).map_err(backend)?,
            log: txn.open_table(LOG).map_err(backend)?,
            revision,
            compacted,
        })
    }

    fn store_meta(&mut self) -> Result<(), StorageError> {
        self.meta.insert(REVISION, self.revision).map_err(backend)?;
        self.meta
            .insert(COMPACTED, self.compacted)
            .map_err(backend)?;
        Ok(())
    }

    fn current(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        match self.latest.get(key).map_err(backend)? {
            Some(v) => super::tables::decode_latest(key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Applies one op. The outer `Err` is a backend failure (aborts the batch); the inner one is the op's
    /// own outcome.
    fn apply(
        &mut self,
        op: Op,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Result<Reply, StorageError>, StorageError> {
        match op {
            Op::Create { key, value } => {
                if self.current(&key)?.is_some() {
                    return Ok(Err(StorageError::AlreadyExists(key)));
                }
                let rev = self.revision + 1;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: rev,
                    mod_revision: rev,
                };
                self.put(&kv)?;
                events.push(WatchEvent::Put {
                    kv: kv.clone(),
                    prev: None,
                });
                Ok(Ok(Reply::Kv(kv)))
            }
            Op::Update {
                key,
                value,
                expected,
            } => {
                let Some(old) = self.current(&key)? else {
                    return Ok(Err(StorageError::NotFound(key)));
                };
                if old.mod_revision != expected {
                    let actual = old.mod_revision;
                    return Ok(Err(StorageError::Conflict {
                        key,
                        expected,
                        actual,
                    }));
                }
                let rev = self.revision + 1;
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: old.create_revision,
                    mod_revision: rev,
                };
                self.put(&kv)?;
                events.push(WatchEvent::Put {
                    kv: kv.clone(),
                    prev: Some(old),
                });
                Ok(Ok(Reply::Kv(kv)))
            }
            Op::Delete { key, expected } => {
                let Some(old) = self.current(&key)? else {
                    return Ok(Err(StorageError::NotFound(key)));
                };
                if let Some(expected) = expected.filter(|e| *e != old.mod_revision) {
                    let actual = old.mod_revision;
                    return Ok(Err(StorageError::Conflict {
                        key,
                        expected,
                        actual,
                    }));
                }
                let rev = self.revision + 1;
                self.latest.remove(key.as_str()).map_err(backend)?;
                self.record(&key, rev, &encode_tombstone())?;
                let deleted = Deleted {
                    revision: rev,
                    prev: old,
                };
                events.push(WatchEvent::Delete(deleted.clone()));
                Ok(Ok(Reply::Deleted(deleted)))
            }
            Op::Compact(target) => {
                if target <= self.compacted {
                    let compacted = self.compacted;
                    return Ok(Err(StorageError::Compacted {
                        requested: target,
                        compacted,
                    }));
                }
                if target > self.revision {
                    let current = self.revision;
                    return Ok(Err(StorageError::FutureRevision {
                        requested: target,
                        current,
                    }));
                }
                self.compact(target)?;
                Ok(Ok(Reply::Compacted))
            }
        }
    }

    /// Writes `kv` at its mod revision (which becomes the store revision).
    fn put(&mut self, kv: &KeyValue) -> Result<(), StorageError> {
        self.latest
            .insert(kv.key.as_str(), encode_latest(kv).as_slice())
            .map_err(backend)?;
        self.record(&kv.key, kv.mod_revision, &encode_put(kv))
    }

    /// Appends one history record and its log entry, and advances the revision.
    fn record(&mut self, key: &str, rev: Revision, record: &[u8]) -> Result<(), StorageError> {
        self.history.insert((key, rev), record).map_err(backend)?;
        self.log.insert(rev, key).map_err(backend)?;
        self.revision = rev;
        Ok(())
    }

    /// Compacts so that only the newest `window` revisions stay readable, in steps of an eighth of the
    /// window so that compaction doesn't run on every write.
    fn auto_compact(&mut self, window: i64) -> Result<(), StorageError> {
        let window = window.max(1);
        let target = self.revision - window + 1;
        if target - self.compacted >= (window / 8).max(1) {
            self.compact(target)?;
        }
        Ok(())
    }

    /// Drops history older than `target`: revisions below it are no longer readable or watchable. Per key,
    /// the newest put before `target` is kept, since it is the key's value at `target` and the previous
    /// value of the key's first event at or after it.
    fn compact(&mut self, target: Revision) -> Result<(), StorageError> {
        let mut keys = BTreeSet::new();
        for entry in self.log.range(..target).map_err(backend)? {
            let (_, key) = entry.map_err(backend)?;
            keys.insert(key.value().to_owned());
        }
        self.log
            .retain_in(..target, |_, _| false)
            .map_err(backend)?;
        for key in &keys {
            let mut records = Vec::new();
            for entry in self
                .history
                .range((key.as_str(), 0)..(key.as_str(), target))
                .map_err(backend)?
            {
                let (k, v) = entry.map_err(backend)?;
                records.push((k.value().1, is_put(v.value())));
            }
            let keep = match records.last() {
                Some((rev, true)) => Some(*rev),
                _ => None,
            };
            for (rev, _) in records.into_iter().filter(|(rev, _)| Some(*rev) != keep) {
                self.history.remove((key.as_str(), rev)).map_err(backend)?;
            }
        }
        self.compacted = target;
        Ok(())
    }
}
