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

use crate::cli::{MasterArgs, MasterOnlyArgs, StoreArgs, StoreKind};
use crate::leader::Role;
use crate::server::{signals, Store};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

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

/// The running master: its HTTP server and, once it leads, its service.
pub struct RunningMaster {
    /// Where the HTTP API listens.
    pub addr: SocketAddr,
    /// The agent secret.
    pub secret: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    leading: tokio::task::JoinHandle<anyhow::Result<Option<MasterService>>>,
}

impl RunningMaster {
    /// Stops serving and waits for the state to be written; an error when leadership was lost.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.server.await;
        match self.leading.await {
            Ok(Ok(Some(service))) => {
                service.shutdown().await;
                Ok(())
            }
            Ok(Ok(None)) => Ok(()),
            Ok(Err(err)) => Err(err),
            Err(err) => Err(anyhow::anyhow!("master task failed: {err}")),
        }
    }
}

/// Routes every request to the leading master's router, or answers as a standby.
#[derive(Clone)]
struct Gate {
    router: watch::Receiver<Option<Router>>,
    role: watch::Receiver<Role>,
}

async fn gate(State(g): State<Gate>, req: Request) -> Response {
    let current = g.router.borrow().clone();
    match current {
        Some(router) => match router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => {
            let leader = match &*g.role.borrow() {
                Role::Standby(l) => l.clone(),
                _ => None,
            };
            offer_scheduler::http::standby_response(req.uri().path(), leader.as_deref())
        }
    }
}

/// Starts the master on `store`; it stops serving when `shutdown` is cancelled. With an
/// election it stands by until it leads (and stops, cancelling `shutdown`, if it loses the lead);
/// without one it leads at once.
pub async fn start_master(
    args: &MasterArgs,
    data_dir: &std::path::Path,
    store: Arc<dyn Storage>,
    shutdown: CancellationToken,
    election: Option<watch::Receiver<Role>>,
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
    let role = election.unwrap_or_else(|| watch::channel(Role::Leader).1);
    let (router_tx, router_rx) = watch::channel(None);
    let app = Router::new().fallback(gate).with_state(Gate {
        router: router_rx,
        role: role.clone(),
    });
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    let leading = tokio::spawn(lead(cfg, store, role, router_tx, shutdown));
    Ok(RunningMaster {
        addr,
        secret,
        server,
        leading,
    })
}

/// Waits for leadership, then runs the master until shutdown or until leadership is lost.
async fn lead(
    cfg: ServiceConfig,
    store: Arc<dyn Storage>,
    mut role: watch::Receiver<Role>,
    router: watch::Sender<Option<Router>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<MasterService>> {
    loop {
        match &*role.borrow_and_update() {
            Role::Leader => break,
            Role::Lost => {
                shutdown.cancel();
                anyhow::bail!("lost the master election");
            }
            Role::Standby(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            r = role.changed() => if r.is_err() { return Ok(None) },
        }
    }
    tracing::info!("this master leads");
    let service = MasterService::start(cfg, Arc::new(StoreAdapter(store)), shutdown.child_token())
        .await
        .context("starting the master")?;
    let _ = router.send(Some(offer_scheduler::http::router(service.handle.clone())));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Some(service)),
            r = role.changed() => {
                if r.is_err() {
                    return Ok(Some(service));
                }
                if *role.borrow() == Role::Lost {
                    tracing::error!("leadership lost: stopping this master");
                    let _ = router.send(None);
                    shutdown.cancel();
                    service.shutdown().await;
                    anyhow::bail!("lost the master election");
                }
            }
        }
    }
}

/// `kumos master`: the master alone, on its own store.
pub async fn run_master(args: MasterOnlyArgs) -> anyhow::Result<()> {
    let data_dir = prepare(&args.store)?;
    let store = Store::open(&args.store).await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (election, role) = match args.store.store {
        StoreKind::Etcd => {
            let (tx, rx) = watch::channel(Role::Standby(None));
            (Some(tx), Some(rx))
        }
        StoreKind::Embedded => (None, None),
    };
    let master = start_master(
        &args.master,
        &data_dir,
        store.storage(),
        shutdown.clone(),
        role,
    )
    .await?;
    if let Some(tx) = election {
        let name = format!("{}/kumos/master-election", args.store.etcd_prefix);
        let me = master.addr.to_string();
        crate::leader::campaign(
            &args.store.etcd_endpoints,
            name,
            me,
            tx,
            &tracker,
            shutdown.clone(),
        )
        .await?;
    }
    tracker.close();
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
    let result = master.shutdown().await;
    tracker.wait().await;
    store.close().await;
    result
}

fn prepare(store: &StoreArgs) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(&store.data_dir)
        .with_context(|| format!("creating {}", store.data_dir.display()))?;
    Ok(store.data_dir.clone())
}
