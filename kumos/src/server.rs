//! The API server role: open the store, build the router, serve it with TLS and a token, write the
//! kubeconfig, and shut down cleanly on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use apiserver::agents::AgentAccess;
use apiserver::routes::AppState;
use apiserver::service_alloc::ServiceRanges;
use apiserver::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use apiserver::storage::etcd::{EtcdConfig, EtcdStore};
use apiserver::storage::Storage;
use apiserver::watch::CacheConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{ApiArgs, ApiserverArgs, ServerArgs, StoreArgs, StoreKind};
use crate::kubeconfig;

/// An opened store, kept concrete so it can be closed on shutdown.
pub enum Store {
    Embedded(Arc<EmbeddedStore>),
    Etcd(Arc<EtcdStore>),
}

impl Store {
    /// Opens the store the flags name.
    pub async fn open(args: &StoreArgs) -> anyhow::Result<Store> {
        match args.store {
            StoreKind::Embedded => {
                let dir = args.data_dir.join("store");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let config = EmbeddedConfig {
                    compaction_window: Some(args.compaction_window),
                    cache_bytes: Some(args.store_cache_mb << 20),
                };
                let store = EmbeddedStore::open(&dir, config)
                    .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
                Ok(Store::Embedded(Arc::new(store)))
            }
            StoreKind::Etcd => {
                let config = EtcdConfig {
                    key_prefix: args.etcd_prefix.clone(),
                    ..Default::default()
                };
                let store = EtcdStore::connect(&args.etcd_endpoints, config)
                    .await
                    .with_context(|| {
                        format!("connecting to etcd at {}", args.etcd_endpoints.join(","))
                    })?;
                Ok(Store::Etcd(Arc::new(store)))
            }
        }
    }

    /// The store as the storage trait.
    pub fn storage(&self) -> Arc<dyn Storage> {
        match self {
            Store::Embedded(s) => s.clone(),
            Store::Etcd(s) => s.clone(),
        }
    }

    /// Closes the store (the embedded store flushes and releases its lock).
    pub async fn close(self) {
        if let Store::Embedded(s) = self {
            s.close().await;
        }
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn signals(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(%err, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = token.cancelled() => return,
    }
    tracing::info!("shutting down");
    token.cancel();
}

/// Runs the API server until a signal arrives.
pub async fn run_apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
    let secret = match &args.agent_secret_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the agent secret {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let agents = AgentAccess {
        master_url: args.master_url.clone(),
        secret,
    };
    let args = args.api;
    std::fs::create_dir_all(&args.store.data_dir)
        .with_context(|| format!("creating {}", args.store.data_dir.display()))?;
    let shutdown = CancellationToken::new();
    let store = Store::open(&args.store).await?;
    let signal_task = tokio::spawn(signals(shutdown.clone()));
    let served = serve_api(&args, store.storage(), agents, None, shutdown.clone()).await;
    shutdown.cancel();
    let _ = signal_task.await;
    store.close().await;
    served
}

/// `kumos server`: the API server, the controllers, the master and local agents in one process.
pub async fn run_server(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.api.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let shutdown = CancellationToken::new();
    let store = Store::open(&args.api.store).await?;
    let master = crate::master::start_master(
        &args.master,
        &data_dir,
        store.storage(),
        shutdown.clone(),
        None,
    )
    .await?;
    let agents = crate::agent::start_local_agents(&args, &master, shutdown.clone()).await?;
    let signal_task = tokio::spawn(signals(shutdown.clone()));
    let master_url = format!("http://{}", master.addr);
    let note = format!("master: {master_url}");
    let access = AgentAccess {
        master_url: Some(master_url),
        secret: Some(master.secret.clone()),
    };
    let bound = bind_api(
        &args.api,
        store.storage(),
        access,
        Some(note),
        shutdown.clone(),
    );
    let served = match bound.await {
        Ok(api) => {
            // The listener is bound and the kubeconfig written: serve, then start the controllers
            // against the API as any client would.
            let serving = tokio::spawn(api.serve(shutdown.clone()));
            let config = controllers::ControllersConfig {
                master_url: format!("http://{}", master.addr),
                controllers: args.controllers.clone(),
                pod_eviction_timeout: args.pod_eviction_timeout,
            };
            let controllers = tokio::spawn(run_controllers(
                data_dir.join("kubeconfig"),
                config,
                shutdown.clone(),
            ));
            let dns = args.dns.config().map(|dns| {
                tokio::spawn(run_dns(data_dir.join("kubeconfig"), dns, shutdown.clone()))
            });
            // The local agents all sit on 127.0.0.1, so one proxy serves them all.
            let proxy = args
                .proxy
                .then(|| tokio::spawn(run_proxy(data_dir.join("kubeconfig"), shutdown.clone())));
            let served = match serving.await {
                Ok(res) => res,
                Err(err) => Err(anyhow::anyhow!("the API server task failed: {err}")),
            };
            shutdown.cancel();
            if let Err(err) = controllers.await {
                tracing::warn!(%err, "the controllers task failed");
            }
            join_logged(dns, "the cluster DNS").await;
            join_logged(proxy, "the service proxy").await;
            served
        }
        Err(err) => Err(err),
    };
    shutdown.cancel();
    let _ = signal_task.await;
    agents.shutdown().await;
    let stopped = master.shutdown().await;
    store.close().await;
    served.and(stopped)
}

/// Runs every controller against the API server the kubeconfig names until `shutdown`.
async fn run_controllers(
    kubeconfig: PathBuf,
    config: controllers::ControllersConfig,
    shutdown: CancellationToken,
) {
    let client = match controllers::client_from_kubeconfig(&kubeconfig).await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "cannot start the controllers");
            return;
        }
    };
    let ctx = controllers::Context { client, shutdown };
    controllers::run_all(ctx, config).await;
}

/// Runs the service proxy of the local agents (NodePorts on 127.0.0.1) until `shutdown`.
async fn run_proxy(kubeconfig: PathBuf, shutdown: CancellationToken) {
    let client = match controllers::client_from_kubeconfig(&kubeconfig).await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "cannot start the service proxy");
            return;
        }
    };
    let node_ip = std::net::Ipv4Addr::LOCALHOST.into();
    service_proxy::run(
        client,
        service_proxy::WatchConfig::new(Some(node_ip)),
        shutdown,
    )
    .await;
}

/// Waits for an optional background task, logging a panic or cancellation.
async fn join_logged(task: Option<tokio::task::JoinHandle<()>>, what: &str) {
    if let Some(Err(err)) = match task {
        Some(task) => Some(task.await),
        None => None,
    } {
        tracing::warn!(%err, "{what} task failed");
    }
}

/// Serves the cluster DNS from the API server the kubeconfig names until `shutdown` (a failure is logged;
/// Kumos keeps running without DNS).
async fn run_dns(kubeconfig: PathBuf, config: cluster_dns::DnsConfig, shutdown: CancellationToken) {
    match controllers::client_from_kubeconfig(&kubeconfig).await {
        Ok(client) => cluster_dns::run(client, config, shutdown).await,
        Err(err) => tracing::error!(%err, "cannot start the cluster DNS"),
    }
}

/// `kumos controllers`: the controllers (and the cluster DNS, unless `dns` is `None`) alone, against
/// the API server of `kubeconfig`, until a signal.
pub async fn run_controllers_only(
    kubeconfig: PathBuf,
    config: controllers::ControllersConfig,
    dns: Option<cluster_dns::DnsConfig>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let client = controllers::client_from_kubeconfig(&kubeconfig).await?;
    let signal_task = tokio::spawn(signals(shutdown.clone()));
    let dns_task =
        dns.map(|dns| tokio::spawn(cluster_dns::run(client.clone(), dns, shutdown.clone())));
    let ctx = controllers::Context {
        client,
        shutdown: shutdown.clone(),
    };
    controllers::run_all(ctx, config).await;
    shutdown.cancel();
    if let Some(task) = dns_task {
        if let Err(err) = task.await {
            tracing::warn!(%err, "the cluster DNS task failed");
        }
    }
    let _ = signal_task.await;
    Ok(())
}

/// Serves the Kubernetes API on `store` until `shutdown` is cancelled, reaching agents with
/// `agents` for `pods/log`.
async fn serve_api(
    args: &ApiArgs,
    store: Arc<dyn Storage>,
    agents: AgentAccess,
    note: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    bind_api(args, store, agents, note, shutdown.clone())
        .await?
        .serve(shutdown)
        .await
}

/// How long a service allocation must stay orphaned before the startup repair frees it.
const REPAIR_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// A bound API server, its kubeconfig written, not serving yet.
struct BoundApi {
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The startup repair of service allocations (stops on shutdown).
    repair: tokio::task::JoinHandle<()>,
    repair_stop: CancellationToken,
}

impl BoundApi {
    /// Serves until `shutdown` is cancelled.
    async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let served = apiserver::serve::serve(self.listener, self.app, self.tls, shutdown)
            .await
            .context("serving the API");
        self.repair_stop.cancel();
        if let Err(err) = self.repair.await {
            tracing::warn!(%err, "the service allocation repair task failed");
        }
        served
    }
}

/// Binds the API listener on `store` and writes the kubeconfig. The first line on stdout names the API
/// URL (tests read it), then the kubeconfig and `note`.
async fn bind_api(
    args: &ApiArgs,
    store: Arc<dyn Storage>,
    agents: AgentAccess,
    note: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<BoundApi> {
    let cache = CacheConfig {
        history: args.default_watch_cache_size.max(1),
        ..Default::default()
    };
    let state = AppState::with_cache_config(store, cache, shutdown.child_token())
        .await
        .map_err(|e| anyhow::anyhow!("initialising the API: {}", e.message))?
        .with_agent_access(agents)
        .with_service_ranges(ServiceRanges {
            cluster_ip: args.service_cluster_ip_range,
            node_port: args.service_node_port_range,
        });
    let repair_state = state.clone();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = apiserver::app(state);
    let data_dir = &args.store.data_dir;
    let (app, tls, url, ca, token) = if args.insecure_http {
        (app, None, format!("http://{addr}"), None, None)
    } else {
        let pki = data_dir.join("pki");
        let mut names = args.tls_san.clone();
        names.push(addr.ip().to_string());
        let material = apiserver::tls::load_or_create(&pki, &names)?;
        let token = apiserver::tls::load_or_create_token(data_dir)?;
        let app = apiserver::auth::require_token(app, token.clone());
        (
            app,
            Some(material.server_config),
            format!("https://{addr}"),
            Some(material.ca_pem),
            Some(token),
        )
    };
    let path = data_dir.join("kubeconfig");
    kubeconfig::write(
        &path,
        &kubeconfig::render(&url, ca.as_deref(), token.as_deref())?,
    )?;
    match note {
        Some(n) => println!(
            "kumos: serving on {url} (kubeconfig: {}; {n})",
            path.display()
        ),
        None => println!("kumos: serving on {url} (kubeconfig: {})", path.display()),
    }
    // Free allocations a crash left behind, once the server has been up a while; the task stops with
    // the server and `serve` waits for it.
    let repair_stop = shutdown.child_token();
    let stop = repair_stop.clone();
    let repair = tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            repaired = repair_state.repair_service_allocations(REPAIR_PAUSE) => match repaired {
                Ok(0) => {}
                Ok(n) => tracing::info!(released = n, "repaired leaked service allocations"),
                Err(err) => tracing::warn!(%err, "checking service allocations failed"),
            },
        }
    });
    Ok(BoundApi {
        listener,
        app,
        tls,
        repair,
        repair_stop,
    })
}
