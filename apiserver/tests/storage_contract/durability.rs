//! Embedded-store durability: reopening keeps data and revision; a SIGKILLed writer loses no acknowledged
//! write; automatic compaction keeps the configured window.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::{Storage, StorageError};

/// Set (to a data dir) in the re-executed test binary to make [`writer_child`] write until killed.
const CHILD_ENV: &str = "KUMOS_STORAGE_DURABILITY_CHILD_DIR";
/// Acknowledged writes to see before killing the child.
const ACKS_BEFORE_KILL: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revision() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (kv, revision) = {
        let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default())?;
        let kv = store.create("/registry/pods/ns/a", b"a".to_vec()).await?;
        let kv = store
            .update(&kv.key, b"b".to_vec(), kv.mod_revision)
            .await?;
        store
            .create("/registry/pods/ns/gone", b"x".to_vec())
            .await?;
        store.delete("/registry/pods/ns/gone", None).await?;
        let revision = store.current_revision().await?;
        store.close().await;
        match store.create("/registry/pods/ns/late", b"x".to_vec()).await {
            Err(StorageError::Backend(_)) => {}
            other => bail!("write after close: {other:?}"),
        }
        (kv, revision)
    };
    let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default())?;
    ensure!(store.current_revision().await? == revision);
    ensure!(store.get(&kv.key).await? == Some(kv.clone()));
    ensure!(store.get("/registry/pods/ns/gone").await?.is_none());
    ensure!(
        store
            .list("/registry/pods/", None, 0, kv.mod_revision - 1)
            .await?
            .items
            .len()
            == 1
    );
    let next = store.create("/registry/pods/ns/c", b"c".to_vec()).await?;
    ensure!(next.mod_revision == revision + 1);
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_keeps_the_window() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = EmbeddedConfig {
        compaction_window: Some(10),
        ..Default::default()
    };
    let store = EmbeddedStore::open(dir.path(), config)?;
    let mut kv = store.create("/registry/pods/ns/a", b"0".to_vec()).await?;
    for i in 1..50 {
        kv = store
            .update(&kv.key, i.to_string().into_bytes(), kv.mod_revision)
            .await?;
    }
    let head = kv.mod_revision;
    let oldest_kept = head - 9;
    let at = store.list("/registry/pods/", None, 0, oldest_kept).await?;
    ensure!(at.items.first().map(|kv| kv.mod_revision) == Some(oldest_kept));
    ensure!(store
        .watch("/registry/pods/", oldest_kept - 1)
        .await
        .is_ok());
    match store.list("/registry/pods/", None, 0, 2).await {
        Err(StorageError::Compacted {
            requested: 2,
            compacted,
        }) => ensure!(compacted > 2 && compacted <= oldest_kept),
        other => bail!("list far below the window: {other:?}"),
    }
    store.close().await;
    Ok(())
}

#[test]
fn killed_writer_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "durability::writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("re-executing the test binary")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut acked = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        // Only whole lines count: the child prints a key after its write was acknowledged.
        if let Some(ack) = line.strip_prefix("ACK ") {
            let (key, rev) = ack.split_once(' ').context("malformed ack")?;
            acked.push((key.to_owned(), rev.parse::<i64>()?));
        }
        if !killed && acked.len() >= ACKS_BEFORE_KILL {
            child.kill().context("SIGKILL the writer")?;
            killed = true;
        }
    }
    let status = child.wait()?;
    ensure!(
        killed,
        "writer exited on its own ({status}) after {} acks",
        acked.len()
    );

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default())?;
        let max = acked.iter().map(|(_, rev)| *rev).max().unwrap_or_default();
        ensure!(store.current_revision().await? >= max);
        for (key, rev) in &acked {
            let kv = store
                .get(key)
                .await?
                .with_context(|| format!("acknowledged {key} lost"))?;
            ensure!(kv.mod_revision == *rev && kv.value == key.as_bytes());
        }
        store.close().await;
        anyhow::Ok(())
    })
}

/// Not a test on its own: in the re-executed binary, writes from several tasks until killed, printing
/// each acknowledged key. A no-op in normal runs.
#[test]
fn writer_child() -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return Ok(());
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(write_until_killed(Path::new(&dir)))
}

async fn write_until_killed(dir: &Path) -> anyhow::Result<()> {
    let store = Arc::new(EmbeddedStore::open(dir, EmbeddedConfig::default())?);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        writers.spawn(async move {
            for i in 0.. {
                let key = format!("/registry/pods/durability/w{w}-{i}");
                let kv = store.create(&key, key.clone().into_bytes()).await?;
                println!("ACK {key} {}", kv.mod_revision);
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    Ok(())
}
