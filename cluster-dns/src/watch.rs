//! The I/O shell: reflectors for Services and Endpoints in every namespace; each change (batched with
//! whatever else is already waiting) rebuilds the table the listeners answer from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::server::Listeners;
use crate::table::Table;

/// The shortest time between two rebuilds of the table.
const REBUILD_INTERVAL: Duration = Duration::from_millis(200);

/// Where and for which zone the cluster DNS answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// UDP and TCP address, e.g. 127.0.0.10:53.
    pub address: SocketAddr,
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
}

/// Serves the cluster DNS until `shutdown`. A failure to bind is logged and returns at once: the rest
/// of Kumos keeps running without DNS.
pub async fn run(client: Client, config: DnsConfig, shutdown: CancellationToken) {
    let listeners = match Listeners::bind(config.address).await {
        Ok(l) => l,
        Err(err) => {
            let hint = match err.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "ports below 1024 need root or CAP_NET_BIND_SERVICE; "
                }
                std::io::ErrorKind::AddrInUse => "something else serves that address; ",
                _ => "",
            };
            tracing::error!(
                address = %config.address,
                %err,
                "cannot serve the cluster DNS ({hint}choose another --cluster-dns-address, \
                 or \"off\"); continuing without it"
            );
            return;
        }
    };
    let bound = listeners.local_addr().unwrap_or(config.address);
    tracing::info!(address = %bound, domain = %config.domain, "cluster DNS serving");
    let (tx, rx) = watch::channel(Arc::new(Table::empty(&config.domain)));
    let mut tasks = JoinSet::new();
    tasks.spawn(listeners.serve(rx, shutdown.clone()));
    tasks.spawn(follow(client, config.domain, tx, shutdown.clone()));
    while let Some(done) = tasks.join_next().await {
        if let Err(err) = done {
            tracing::warn!(%err, "a cluster DNS task failed");
        }
    }
}

/// Keeps `tx` at the table of the current Services and Endpoints until `shutdown`.
async fn follow(
    client: Client,
    domain: String,
    tx: watch::Sender<Arc<Table>>,
    shutdown: CancellationToken,
) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (endpoints, ep_writer) = reflector::store::<Endpoints>();
    let svc_events = reflector::reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .map(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let ep_events = reflector::reflector(
        ep_writer,
        watcher(Api::<Endpoints>::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .map(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let mut events = futures::stream::select(svc_events, ep_events).boxed();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        let Some(event) = event else { return };
        if let Err(err) = event {
            tracing::debug!(%err, "cluster DNS watch error (retrying)");
        }
        // Batch what is already waiting, then rebuild once.
        while let Some(Some(_)) = events.next().now_or_never() {}
        let table = build(&domain, &services, &endpoints);
        tracing::debug!(names = table.len(), "cluster DNS table rebuilt");
        tx.send_replace(Arc::new(table));
        // At most one rebuild per interval, however busy the cluster is: the events of the pause are
        // taken as one batch next time round.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REBUILD_INTERVAL) => {}
        }
    }
}

fn build(domain: &str, services: &Store<Service>, endpoints: &Store<Endpoints>) -> Table {
    let (services, endpoints) = (services.state(), endpoints.state());
    Table::build(
        domain,
        services.iter().map(AsRef::as_ref),
        endpoints.iter().map(AsRef::as_ref),
    )
}
