//! Watches on etcd: a prefix watch from a start revision with previous values, and the discovery of
//! etcd's compaction revision (which etcd only reports to watches).

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse};
use futures::StreamExt;

use super::{backend, backend_msg, is_compacted, prefix_end, EtcdStore};
use crate::storage::{Deleted, Result, Revision, StorageError, WatchEvent, WatchStream};

/// How long to wait for etcd to report its compaction revision; only the error's detail depends on it.
const COMPACTION_PROBE: Duration = Duration::from_secs(5);

/// The state of one watch stream.
struct State {
    store: EtcdStore,
    stream: etcd_client::WatchStream,
    after: Revision,
    pending: VecDeque<WatchEvent>,
    done: bool,
}

impl State {
    /// The next event; `None` ends the stream (after an error, or when etcd closes it).
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let resp = match self.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => return None,
                Err(e) => {
                    self.done = true;
                    return Some(Err(backend(e)));
                }
            };
            if let Err(e) = self.absorb(&resp) {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    fn absorb(&mut self, resp: &WatchResponse) -> Result<()> {
        if resp.compact_revision() > 0 {
            let compacted = resp.compact_revision();
            return Err(StorageError::Compacted {
                requested: self.after,
                compacted,
            });
        }
        if resp.canceled() {
            return Err(backend_msg(format!(
                "etcd canceled the watch: {}",
                resp.cancel_reason()
            )));
        }
        for event in resp.events() {
            let kv = event
                .kv()
                .ok_or_else(|| backend_msg("etcd watch event without key"))?;
            let kv = self.store.to_kv(kv)?;
            let prev = event.prev_kv().map(|p| self.store.to_kv(p)).transpose()?;
            self.pending.push_back(match event.event_type() {
                EventType::Put => WatchEvent::Put { kv, prev },
                EventType::Delete => WatchEvent::Delete(Deleted {
                    revision: kv.mod_revision,
                    prev: prev
                        .ok_or_else(|| backend_msg("etcd delete event without previous value"))?,
                }),
            });
        }
        Ok(())
    }
}

impl EtcdStore {
    /// Watches keys under `prefix` from revision `after + 1`, failing up front when it is compacted.
    pub(super) async fn watch_prefix(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let start = after + 1;
        let full = self.full(prefix);
        let end = prefix_end(&full);
        // etcd reports a compacted start only asynchronously on the stream; a count at the start revision
        // fails synchronously, so callers see `Compacted` from `watch` itself as with the embedded store.
        let probe = GetOptions::new()
            .with_range(end.clone())
            .with_count_only()
            .with_revision(start);
        if let Err(e) = self.kv.clone().get(full.clone(), Some(probe)).await {
            if is_compacted(&e) {
                let compacted = self.compacted_revision(after).await;
                return Err(StorageError::Compacted {
                    requested: after,
                    compacted,
                });
            }
            // A future start revision is fine for a watch: it waits for it.
        }
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(start)
            .with_prev_key();
        let stream = self
            .watch
            .clone()
            .watch(full, Some(options))
            .await
            .map_err(backend)?;
        let state = State {
            store: self.clone(),
            stream,
            after,
            pending: VecDeque::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        });
        Ok(stream.boxed())
    }

    /// etcd's compaction revision, known to be at or above `requested`: a watch from revision 1 is answered
    /// with it. Falls back to `requested` if etcd does not say in time (only when nothing above revision 1
    /// was compacted, which leaves no other candidate).
    pub(super) async fn compacted_revision(&self, requested: Revision) -> Revision {
        let probe = async {
            let options = WatchOptions::new().with_start_revision(1);
            let mut stream = self
                .watch
                .clone()
                .watch(vec![0u8], Some(options))
                .await
                .ok()?;
            while let Some(resp) = stream.message().await.ok()? {
                if resp.compact_revision() > 0 {
                    return Some(resp.compact_revision());
                }
                if resp.canceled() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(COMPACTION_PROBE, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(requested)
    }
}
