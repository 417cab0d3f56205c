//! Watch streams of the embedded store: catch-up from the revision log, then live committed events.
//!
//! Ordering argument: the stream subscribes to the broadcast *before* its first log read, so every commit
//! is either visible to that read or broadcast afterwards; events at or below the last revision already
//! read from the log are skipped, so nothing is seen twice. A lagged receiver falls back to re-reading the
//! log from the last delivered revision, so nothing is lost either.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use redb::{Database, ReadableDatabase};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::tables::{
    backend, backend_msg, event_at, meta, COMPACTED, HISTORY, LOG, META, REVISION,
};
use super::writer::EventBatch;
use crate::storage::{Revision, StorageError, WatchEvent, WatchStream};

/// Log entries scanned per catch-up read (bounds memory and the time a read transaction stays open).
const CATCH_UP_CHUNK: usize = 1024;

/// One catch-up read of the log.
pub(super) struct Chunk {
    /// Matching events, in revision order.
    events: Vec<WatchEvent>,
    /// Every revision up to this one has been scanned.
    scanned_to: Revision,
    /// Whether the scan reached the head of the log.
    at_end: bool,
}

/// Reads log entries after `after` under `prefix`, at most [`CATCH_UP_CHUNK`] of them.
pub(super) async fn read_log(
    db: Arc<Database>,
    prefix: String,
    after: Revision,
) -> Result<Chunk, StorageError> {
    tokio::task::spawn_blocking(move || read_log_blocking(&db, &prefix, after))
        .await
        .unwrap_or_else(|e| Err(backend_msg(format!("embedded store read failed: {e}"))))
}

fn read_log_blocking(db: &Database, prefix: &str, after: Revision) -> Result<Chunk, StorageError> {
    let txn = db.begin_read().map_err(backend)?;
    let meta_table = txn.open_table(META).map_err(backend)?;
    let compacted = meta(&meta_table, COMPACTED)?;
    let head = meta(&meta_table, REVISION)?;
    // As in etcd, a watch may start at the compaction revision itself but not before it.
    if after + 1 < compacted {
        return Err(StorageError::Compacted {
            requested: after,
            compacted,
        });
    }
    let log = txn.open_table(LOG).map_err(backend)?;
    let history = txn.open_table(HISTORY).map_err(backend)?;
    let mut events = Vec::new();
    let mut scanned_to = after;
    for (scanned, entry) in log.range(after + 1..).map_err(backend)?.enumerate() {
        if scanned == CATCH_UP_CHUNK {
            return Ok(Chunk {
                events,
                scanned_to,
                at_end: false,
            });
        }
        let (rev, key) = entry.map_err(backend)?;
        let (rev, key) = (rev.value(), key.value());
        if key.starts_with(prefix) {
            events.push(event_at(&history, key, rev)?);
        }
        scanned_to = rev;
    }
    Ok(Chunk {
        events,
        scanned_to: scanned_to.max(head),
        at_end: true,
    })
}

/// The state of one watch stream.
struct State {
    db: Arc<Database>,
    prefix: String,
    rx: broadcast::Receiver<EventBatch>,
    cancel: CancellationToken,
    /// Every event up to this revision has been delivered or skipped.
    last: Revision,
    /// Whether the log must be read before listening to the broadcast again.
    catching_up: bool,
    pending: VecDeque<WatchEvent>,
    failed: bool,
}

impl State {
    fn absorb(&mut self, chunk: Chunk) {
        self.pending.extend(chunk.events);
        self.last = self.last.max(chunk.scanned_to);
        self.catching_up = !chunk.at_end;
    }

    /// The next event; `None` ends the stream (store closed, or after an error).
    async fn next(&mut self) -> Option<Result<WatchEvent, StorageError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.failed {
                return None;
            }
            if self.catching_up {
                match read_log(self.db.clone(), self.prefix.clone(), self.last).await {
                    Ok(chunk) => self.absorb(chunk),
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            let received = tokio::select! {
                () = self.cancel.cancelled() => return None,
                received = self.rx.recv() => received,
            };
            match received {
                Ok(batch) => {
                    for event in batch.iter().filter(|e| e.revision() > self.last) {
                        if event.key().starts_with(&self.prefix) {
                            self.pending.push_back(event.clone());
                        }
                    }
                    if let Some(newest) = batch.last() {
                        self.last = self.last.max(newest.revision());
                    }
                }
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Opens a watch of `prefix` after `after`: subscribes, then reads the first chunk of the log (so a
/// compacted `after` fails here rather than in the stream).
pub(super) async fn watch(
    db: Arc<Database>,
    events: &broadcast::Sender<EventBatch>,
    cancel: CancellationToken,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StorageError> {
    let rx = events.subscribe();
    let first = read_log(db.clone(), prefix.to_owned(), after).await?;
    let mut state = State {
        db,
        prefix: prefix.to_owned(),
        rx,
        cancel,
        last: after,
        catching_up: false,
        pending: VecDeque::new(),
        failed: false,
    };
    state.absorb(first);
    let stream = futures::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    });
    Ok(stream.boxed())
}
