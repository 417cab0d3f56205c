//! The master role: its store adapter, settings from flags, and `kumos master`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use apiserver::storage::{Storage, StorageError};
use offer_scheduler::master::{Config, STORE_PREFIX};
use offer_scheduler::service::{MasterService, MasterStore, ServiceConfig, StoreError};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{MasterArgs, MasterOnlyArgs, StoreArgs};
use crate::server::{signals, Store};

/// The master's records live in the cluster store beside the API objects.
struct StoreAdapter(Arc<dyn Storage>);

fn store_err(e: StorageError) -> StoreError {
    StoreError(e.to_string())
}

#[async_trait::async_trait]
impl MasterStore for StoreAdapter {
    async fn load(&self) -> Result<Vec<(String, Json)>, StoreError> {
        let list = self
            .0
            .list(STORE_PREFIX, None, 0, 0)
            .await
            .map_err(store_err)?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|kv| Some((kv.key, serde_json::from_slice(&kv.value).ok()?)))
            .collect())
    }

    async fn put(&self, key: &str, value: Option<&Json>) -> Result<(), StoreError> {
        // Only the master writes these keys, so a read-then-write needs no retry loop beyond
        // the races with itself that cannot happen (one writer task).
        let current = self.0.get(key).await.map_err(store_err)?;
        match (value, current) {
            (Some(v), Some(kv)) => {
                let bytes = v.to_string().into_bytes();
                self.0
                    .update(key, bytes, kv.mod_revision)
                    .await
                    .map_err(store_err)?;
            }
            (Some(v), None) => {
                self.0
                    .create(key, v.to_string().into_bytes())
                    .await
                    .map_err(store_err)?;
            }
            (None, Some(kv)) => {
                self.0
                    .delete(key, Some(kv.mod_revision))
                    .await
                    .map_err(store_err)?;
            }
            (None, None) => {}
        }
        Ok(())
    }
}

/// The running master: its service and HTTP server.
pub struct RunningMaster {
    /// The state machine's shell.
    pub service: MasterService,
    /// Where the HTTP API listens.
    pub addr: SocketAddr,
    /// The agent secret.
    pub secret: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningMaster {
    /// Stops serving and waits for the state to be written.
    pub async fn shutdown(self) {
        let _ = self.server.await;
        self.service.shutdown().await;
    }
}

/// Starts the master on `store`; it stops serving when `shutdown` is cancelled.
pub async fn start_master(
    args: &MasterArgs,
    data_dir: &std::path::Path,
    store: Arc<dyn Storage>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningMaster> {
    let listener = TcpListener::bind(args.master_listen)
        .await
        .with_context(|| format!("binding the master to {}", args.master_listen))?;
    let addr = listener.local_addr()?;
    let secret_path = args
        .agent_secret_file
        .clone()
        .unwrap_or_else(|| data_dir.join("agent-secret"));
    let secret = apiserver::tls::load_or_create_secret(&secret_path)
        .with_context(|| format!("reading the agent secret {}", secret_path.display()))?;
    let cfg = ServiceConfig {
        master: Config {
            heartbeat_interval: args.scheduler_heartbeat_interval,
            agent_ping_timeout: args.agent_ping_timeout,
            max_agent_ping_timeouts: args.max_agent_ping_timeouts.max(1),
            agent_reregister_timeout: args.agent_reregister_timeout,
            offer_timeout: args.offer_timeout,
            hostname: addr.ip().to_string(),
            port: addr.port(),
            ..Config::default()
        },
        allocation_interval: args.allocation_interval,
        agent_secret: secret.clone(),
    };
    let service = MasterService::start(cfg, Arc::new(StoreAdapter(store)), shutdown.child_token())
        .await
        .context("starting the master")?;
    let app = offer_scheduler::http::router(service.handle.clone());
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    Ok(RunningMaster {
        service,
        addr,
        secret,
        server,
    })
}

/// `kumos master`: the master alone, on its own store.
pub async fn run_master(args: MasterOnlyArgs) -> anyhow::Result<()> {
    let data_dir = prepare(&args.store)?;
    let store = Store::open(&args.store).await?;
    let shutdown = CancellationToken::new();
    let master = start_master(&args.master, &data_dir, store.storage(), shutdown.clone()).await?;
    println!(
        "kumos: master on http://{} (agent secret: {})",
        master.addr,
        args.master
            .agent_secret_file
            .clone()
            .unwrap_or_else(|| data_dir.join("agent-secret"))
            .display()
    );
    signals(shutdown.clone()).await;
    master.shutdown().await;
    store.close().await;
    Ok(())
}

fn prepare(store: &StoreArgs) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(&store.data_dir)
        .with_context(|| format!("creating {}", store.data_dir.display()))?;
    Ok(store.data_dir.clone())
}
