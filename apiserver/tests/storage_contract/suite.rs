//! Key-value behaviours of the contract: CAS writes, revisions, range reads, compaction.

use std::sync::Arc;

use anyhow::{bail, ensure};
use apiserver::storage::{KeyValue, Storage, StorageError};

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn keys(items: &[KeyValue]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

pub async fn create_get_update_delete(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let key = "/registry/pods/default/web";
    let before = store.current_revision().await?;
    let created = store.create(key, bytes("v1")).await?;
    ensure!(created.mod_revision > before && created.create_revision == created.mod_revision);
    ensure!(created.key == key && created.value == bytes("v1"));
    ensure!(store.get(key).await?.as_ref() == Some(&created));
    ensure!(store.get("/registry/pods/default/missing").await?.is_none());

    match store.create(key, bytes("again")).await {
        Err(StorageError::AlreadyExists(k)) => ensure!(k == key),
        other => bail!("second create: {other:?}"),
    }
    match store
        .update(key, bytes("v2"), created.mod_revision - 1)
        .await
    {
        Err(StorageError::Conflict {
            key: k,
            expected,
            actual,
        }) => {
            ensure!(
                k == key && expected == created.mod_revision - 1 && actual == created.mod_revision
            )
        }
        other => bail!("stale update: {other:?}"),
    }
    for expected in [0, created.mod_revision] {
        match store
            .update("/registry/pods/default/missing", bytes("x"), expected)
            .await
        {
            Err(StorageError::NotFound(k)) => ensure!(k == "/registry/pods/default/missing"),
            other => bail!("update of a missing key (expected {expected}): {other:?}"),
        }
    }
    ensure!(
        store.get("/registry/pods/default/missing").await?.is_none(),
        "update created a key"
    );

    let updated = store.update(key, bytes("v2"), created.mod_revision).await?;
    ensure!(updated.mod_revision > created.mod_revision);
    ensure!(updated.create_revision == created.create_revision && updated.value == bytes("v2"));
    ensure!(store.get(key).await?.as_ref() == Some(&updated));

    match store.delete(key, Some(created.mod_revision)).await {
        Err(StorageError::Conflict { actual, .. }) => ensure!(actual == updated.mod_revision),
        other => bail!("stale delete: {other:?}"),
    }
    match store.delete("/registry/pods/default/missing", None).await {
        Err(StorageError::NotFound(_)) => {}
        other => bail!("delete of a missing key: {other:?}"),
    }
    let deleted = store.delete(key, Some(updated.mod_revision)).await?;
    ensure!(deleted.revision > updated.mod_revision && deleted.prev == updated);
    ensure!(store.get(key).await?.is_none());
    ensure!(store.current_revision().await? == deleted.revision);

    let recreated = store.create(key, bytes("v3")).await?;
    ensure!(
        recreated.create_revision == recreated.mod_revision
            && recreated.create_revision > deleted.revision
    );
    let unguarded = store.delete(key, None).await?;
    ensure!(unguarded.prev == recreated);
    Ok(())
}

pub async fn revisions_increase_by_one_per_write(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let mut last = store.current_revision().await?;
    for i in 0..5 {
        let key = format!("/registry/configmaps/ns/c{i}");
        let kv = store.create(&key, bytes("a")).await?;
        ensure!(
            kv.mod_revision == last + 1,
            "create: {} after {last}",
            kv.mod_revision
        );
        // A refused write does not consume a revision.
        ensure!(store.create(&key, bytes("b")).await.is_err());
        let kv = store.update(&key, bytes("b"), kv.mod_revision).await?;
        ensure!(kv.mod_revision == last + 2);
        let deleted = store.delete(&key, None).await?;
        ensure!(deleted.revision == last + 3);
        last = deleted.revision;
        ensure!(store.current_revision().await? == last);
    }
    Ok(())
}

pub async fn list_pages_at_a_fixed_revision(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let prefix = "/registry/pods/ns/";
    for i in 0..10 {
        store
            .create(&format!("{prefix}p{i:02}"), bytes(&format!("v{i}")))
            .await?;
    }
    store
        .create("/registry/pods/other/p00", bytes("elsewhere"))
        .await?;
    let all = store.list(prefix, None, 0, 0).await?;
    ensure!(all.items.len() == 10 && !all.more);
    ensure!(all.revision == store.current_revision().await?);
    let at = all.revision;

    // Writes after the snapshot must not show up in pages read at it.
    store
        .create(&format!("{prefix}p05a"), bytes("late"))
        .await?;
    let first = &all.items[0];
    store
        .update(&first.key, bytes("changed"), first.mod_revision)
        .await?;
    store.delete(&format!("{prefix}p09"), None).await?;

    let mut paged = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = store.list(prefix, start.as_deref(), 3, at).await?;
        ensure!(page.revision == at);
        ensure!(page.items.len() <= 3);
        paged.extend(page.items.iter().cloned());
        if !page.more {
            break;
        }
        let last = page
            .items
            .last()
            .map(|kv| kv.key.clone())
            .unwrap_or_default();
        start = Some(format!("{last}\0"));
    }
    ensure!(
        paged == all.items,
        "paged {:?} vs {:?}",
        keys(&paged),
        keys(&all.items)
    );

    let exact = store.list(prefix, None, 10, at).await?;
    ensure!(
        exact.items.len() == 10 && !exact.more,
        "a full last page has no more"
    );
    let now = store.list(prefix, None, 0, 0).await?;
    ensure!(now.items.len() == 10 && now.items.iter().any(|kv| kv.key.ends_with("p05a")));
    Ok(())
}

pub async fn list_at_an_old_revision(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let prefix = "/registry/secrets/ns/";
    let a = store.create(&format!("{prefix}a"), bytes("a1")).await?;
    let a2 = store.update(&a.key, bytes("a2"), a.mod_revision).await?;
    let b = store.create(&format!("{prefix}b"), bytes("b1")).await?;
    let gone = store.delete(&a.key, None).await?;

    let at = |rev| {
        let store = store.clone();
        async move { store.list(prefix, None, 0, rev).await }
    };
    ensure!(at(a.mod_revision - 1).await?.items.is_empty());
    ensure!(at(a.mod_revision).await?.items == vec![a.clone()]);
    ensure!(at(a2.mod_revision).await?.items == vec![a2.clone()]);
    ensure!(at(b.mod_revision).await?.items == vec![a2.clone(), b.clone()]);
    ensure!(at(gone.revision).await?.items == vec![b.clone()]);
    let paged = store.list(prefix, None, 1, b.mod_revision).await?;
    ensure!(paged.items == vec![a2.clone()] && paged.more && paged.revision == b.mod_revision);

    let current = store.current_revision().await?;
    match store.list(prefix, None, 0, current + 10).await {
        Err(StorageError::FutureRevision {
            requested,
            current: c,
        }) => {
            ensure!(requested == current + 10 && c == current)
        }
        other => bail!("future list: {other:?}"),
    }
    Ok(())
}

pub async fn prefixes_are_isolated(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    store.create("/registry/pods/a", bytes("pod")).await?;
    store.create("/registry/podsx", bytes("not a pod")).await?;
    store
        .create("/registry/podsx/b", bytes("not a pod either"))
        .await?;
    store.create("/registry/pod", bytes("short")).await?;
    let pods = store.list("/registry/pods/", None, 0, 0).await?;
    ensure!(
        keys(&pods.items) == ["/registry/pods/a"],
        "{:?}",
        keys(&pods.items)
    );
    let from_outside = store
        .list("/registry/pods/", Some("/registry/a"), 0, 0)
        .await?;
    ensure!(keys(&from_outside.items) == ["/registry/pods/a"]);
    let past_the_end = store
        .list("/registry/pods/", Some("/registry/pods0"), 0, 0)
        .await?;
    ensure!(past_the_end.items.is_empty());
    Ok(())
}

pub async fn large_values_round_trip(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    // Six 1 MiB values: one range response far above gRPC's default 4 MiB message limit.
    let prefix = "/registry/configmaps/big/";
    let mut expected = Vec::new();
    for i in 0..6u8 {
        let value = vec![b'a' + i; 1024 * 1024];
        expected.push(store.create(&format!("{prefix}c{i}"), value).await?);
    }
    let listed = store.list(prefix, None, 0, 0).await?;
    ensure!(listed.items.iter().map(|kv| kv.value.len()).sum::<usize>() >= 6 * 1024 * 1024);
    ensure!(listed.items == expected, "large values differ");
    Ok(())
}

pub async fn compaction_rejects_old_revisions(store: Arc<dyn Storage>) -> anyhow::Result<()> {
    let prefix = "/registry/services/ns/";
    let a = store.create(&format!("{prefix}a"), bytes("a1")).await?;
    let a2 = store.update(&a.key, bytes("a2"), a.mod_revision).await?;
    let b = store.create(&format!("{prefix}b"), bytes("b1")).await?;
    let c = store.create(&format!("{prefix}c"), bytes("c1")).await?;
    store.delete(&c.key, None).await?;
    let head = store.update(&b.key, bytes("b2"), b.mod_revision).await?;

    store.compact(b.mod_revision).await?;
    match store.list(prefix, None, 0, a2.mod_revision).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            ensure!(requested == a2.mod_revision && compacted == b.mod_revision)
        }
        other => bail!("list below the compaction revision: {other:?}"),
    }
    // The compaction revision itself stays readable, with values written before it.
    let at = store.list(prefix, None, 0, b.mod_revision).await?;
    ensure!(at.items == vec![a2.clone(), b.clone()]);
    let now = store.list(prefix, None, 0, 0).await?;
    ensure!(now.items == vec![a2.clone(), head.clone()]);

    match store.compact(b.mod_revision).await {
        Err(StorageError::Compacted {
            requested,
            compacted,
        }) => {
            ensure!(requested == b.mod_revision && compacted == b.mod_revision)
        }
        other => bail!("compacting again at the same revision: {other:?}"),
    }
    match store.compact(head.mod_revision + 5).await {
        Err(StorageError::FutureRevision { requested, current }) => {
            ensure!(requested == head.mod_revision + 5 && current == head.mod_revision)
        }
        other => bail!("compacting a future revision: {other:?}"),
    }
    store.compact(head.mod_revision).await?;
    ensure!(store.list(prefix, None, 0, head.mod_revision).await?.items == now.items);
    Ok(())
}
