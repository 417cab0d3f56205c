//! Watch behaviours of the contract: replay from a revision, order, no gaps or duplicates, compaction.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use apiserver::storage::{Revision, Storage, StorageError, WatchEvent, WatchStream};
use futures::StreamExt;

/// A guard against a hung backend so a broken build fails instead of hanging; not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The next `n` events of a watch.
async fn take(stream: &mut WatchStream, n: usize) -> anyhow::Result<Vec<WatchEvent>> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let next = tokio::time::timeout(HANG_GUARD, stream.next())
            .await
            .with_context(|| format!("no event after {} of {n}", events.len()))?;
        match next {
            Some(event) => events.push(event?),
            None => bail!("watch ended after {} of {n} events", events.len()),
        }
    }
    Ok(events)
}

/// Checks that events carry exactly the revisions `from..=to`, in order.
fn ensure_contiguous(events: &[WatchEvent], from: Revision, to: Revision) -> anyhow::Result<()> {
    let revisions: Vec<Revision> = events.iter().map(WatchEvent::revision).collect();
    let expected: Vec<Revision> = (from..=to).collect();
    ensure!(
        revisions == expected,
        "revisions {revisions:?}, expected {from}..={to}"
    );
    Ok(())
}

pub async fn watch_replays_history_with_previous_values(
    store: Arc<dyn Storage>,
) -> anyhow::Result<()> {
    let before = store.current_revision().await?;
    let key = "/registry/pods/ns/web";
    let v1 = store.create(key, b"v1".to_vec()).await?;
    store
        .create("/registry/podsx/ignored", b"x".to_vec())
        .await?;
    let v2 = store.update(key, b"v2".to_vec(), v1.mod_revision).await?;
    let gone = store.delete(key, Some(v2.mod_revision)).await?;

    let mut watch = store.watch("/registry/pods/", before).await?;
    let events = take(&mut watch, 3).await?;
    ensure!(
        events[0]
            == WatchEvent::Put {
                kv: v1.clone(),
                prev: None
            },
        "{:?}",
        events[0]
    );
    ensure!(
        events[1]
            == WatchEvent::Put {
                kv: v2.clone(),
                prev: Some(v1.clone())
            },
        "{:?}",
        events[1]
    );
    ensure!(
        events[2] == WatchEvent::Delete(gone.clone()),
        "{:?}",
        events[2]
    );

    // From the middle of history: only what came after.
    let mut tail = store.watch("/registry/pods/", v1.mod_revision).await?;
    let live = store.create(key, b"v3".to_vec()).await?;
    let events = take(&mut tail, 3).await?;
    ensure!(events[0].revision() == v2.mod_revision && events[1] == WatchEvent::Delete(gone));
    ensure!(
        events[2]
            == WatchEvent::Put {
                kv: live.clone(),
                prev: None
            }
    );
    let events = take(&mut watch, 1).await?;
    ensure!(
        events[0]
            == WatchEvent::Put {
                kv: live,
                prev: None
            }
    );
    Ok(())
}

pub async fn watch_has_no_gaps_or_duplicates_under_concurrent_writers(
    store: Arc<dyn Storage>,
) -> anyhow::Result<()> {
    const WRITERS: usize = 8;
    const WRITES: usize = 40;
    let start = store.current_revision().await?;
    let mut early = store.watch("/registry/pods/", start).await?;

    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.spawn(async move {
            let key = format!("/registry/pods/ns/w{w}");
            let mut kv = store.create(&key, b"0".to_vec()).await?;
            for i in 1..WRITES {
                kv = store
                    .update(&key, i.to_string().into_bytes(), kv.mod_revision)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    // A watch opened while the writers run straddles catch-up and live delivery.
    let mut midway = store.watch("/registry/pods/", start).await?;
    while let Some(done) = writers.join_next().await {
        done??;
    }
    let end = store.current_revision().await?;
    ensure!(end - start == (WRITERS * WRITES) as Revision);

    for watch in [&mut early, &mut midway] {
        let events = take(watch, WRITERS * WRITES).await?;
        ensure_contiguous(&events, start + 1, end)?;
        // Each key's updates chain: every event's previous value is that key's preceding event.
        for event in &events {
            if let WatchEvent::Put {
                kv,
                prev: Some(prev),
            } = event
            {
                let count = |v: &[u8]| std::str::from_utf8(v).ok()?.parse::<usize>().ok();
                ensure!(prev.key == kv.key && prev.mod_revision < kv.mod_revision);
                ensure!(
                    count(&kv.value) == count(&prev.value).map(|c| c + 1),
                    "{event:?}"
                );
            }
        }
    }
    Ok(())
}

pub async fn slow_watcher_loses_nothing(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    // More committed transactions than the embedded store buffers for a watcher that isn't reading.
    const WRITES: usize = 600;
    let start = store.current_revision().await?;
    let mut watch = store.watch("/registry/events/", start).await?;
    let key = "/registry/events/ns/e";
    let mut kv = store.create(key, b"0".to_vec()).await?;
    for i in 1..WRITES {
        kv = store
            .update(key, i.to_string().into_bytes(), kv.mod_revision)
            .await?;
    }
    let events = take(&mut watch, WRITES).await?;
    ensure_contiguous(&events, start + 1, kv.mod_revision)?;
    ensure!(
        events.last()
            == Some(&WatchEvent::Put {
                kv: kv.clone(),
                prev: events[WRITES - 2].kv()
            })
    );
    Ok(())
}

pub async fn watch_from_compacted_revision_fails(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let key = "/registry/pods/ns/p";
    let v1 = store.create(key, b"1".to_vec()).await?;
    let v2 = store.update(key, b"2".to_vec(), v1.mod_revision).await?;
    let v3 = store.update(key, b"3".to_vec(), v2.mod_revision).await?;
    store.compact(v2.mod_revision).await?;

    match store.watch("/registry/pods/", v1.mod_revision - 1).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            ensure!(requested == v1.mod_revision - 1 && compacted == v2.mod_revision)
        }
        Err(other) => bail!("watch below the compaction revision: {other}"),
        Ok(_) => bail!("watch below the compaction revision succeeded"),
    }
    // Starting exactly at the compaction revision still works. (The first event's previous value lies
    // below the compaction revision: etcd drops it, the embedded store keeps it.)
    let mut watch = store.watch("/registry/pods/", v2.mod_revision - 1).await?;
    let events = take(&mut watch, 2).await?;
    ensure!(
        matches!(&events[0], WatchEvent::Put { kv, .. } if *kv == v2),
        "{:?}",
        events[0]
    );
    ensure!(
        events[1]
            == WatchEvent::Put {
                kv: v3,
                prev: Some(v2)
            }
    );
    Ok(())
}

/// The key-value a watch event leaves behind (`None` for a delete).
trait EventKv {
    fn kv(&self) -> Option<apiserver::storage::KeyValue>;
}

impl EventKv for WatchEvent {
    fn kv(&self) -> Option<apiserver::storage::KeyValue> {
        match self {
            WatchEvent::Put { kv, .. } => Some(kv.clone()),
            WatchEvent::Delete(_) => None,
        }
    }
}
