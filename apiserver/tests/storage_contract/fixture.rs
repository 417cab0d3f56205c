//! Backends under test: a fresh embedded store in a temp dir, or a fresh etcd process.

use std::any::Any;
use std::sync::Arc;

use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::etcd::{EtcdConfig, EtcdStore};
use apiserver::storage::Storage;

/// A store and whatever must live as long as it (temp dir, etcd process).
pub struct Fixture {
    pub store: Arc<dyn Storage>,
    _guard: Box<dyn Any + Send>,
}

/// A fresh embedded store keeping all history.
pub async fn embedded() -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default())?;
    Ok(Fixture {
        store: Arc::new(store),
        _guard: Box::new(dir),
    })
}

/// A fresh etcd process and a store connected to it.
pub async fn etcd() -> anyhow::Result<Fixture> {
    let etcd = tokio::task::spawn_blocking(conformance::EtcdProcess::start).await??;
    let store = EtcdStore::connect(&[etcd.endpoint()], EtcdConfig::default()).await?;
    Ok(Fixture {
        store: Arc::new(store),
        _guard: Box::new(etcd),
    })
}
