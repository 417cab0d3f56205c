//! The kube shell: mirrors Services and Endpoints with reflectors, rebuilds the table a few
//! milliseconds after any change (changes arriving meanwhile fold into one rebuild), applies it to
//! the [`Proxy`], and reports listeners that cannot bind as Warning events on their Service.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Service};
use kube::runtime::reflector;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use controllers::events::{EventType, Recorder};

use crate::proxy::{BindFailure, Proxy, ProxyConfig};
use crate::table::{self, ListenerKey};

/// The component events are reported as.
pub const COMPONENT: &str = "kube-proxy";

/// The reason of the event a listener that cannot bind records.
pub const REASON_FAILED_TO_LISTEN: &str = "FailedToListen";

/// How the proxy of one agent runs.
#[derive(Debug, Clone, Copy)]
pub struct WatchConfig {
    /// The agent's address: NodePorts listen there (none without it).
    pub node_ip: Option<IpAddr>,
    /// Forwarding tunables.
    pub proxy: ProxyConfig,
    /// How long after a change the table is rebuilt.
    pub debounce: Duration,
    /// How often listeners that failed to bind are retried.
    pub retry_interval: Duration,
}

impl WatchConfig {
    /// Defaults for an agent whose NodePorts listen on `node_ip`.
    pub fn new(node_ip: Option<IpAddr>) -> WatchConfig {
        WatchConfig {
            node_ip,
            proxy: ProxyConfig::default(),
            debounce: Duration::from_millis(20),
            retry_interval: Duration::from_secs(10),
        }
    }
}

/// Which mirror an event came from, and whether it completed a (re)list.
enum Change {
    Services { listed: bool },
    Endpoints { listed: bool },
    Nothing,
}

fn change<K>(ev: Result<watcher::Event<K>, watcher::Error>, listed: fn(bool) -> Change) -> Change {
    match ev {
        Ok(watcher::Event::InitDone) => listed(true),
        Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => listed(false),
        Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Change::Nothing,
        Err(err) => {
            tracing::warn!(%err, "service proxy watch");
            Change::Nothing
        }
    }
}

/// Runs the proxy until `shutdown` is cancelled, then stops every listener and connection.
pub async fn run(client: Client, config: WatchConfig, shutdown: CancellationToken) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (endpoints, ep_writer) = reflector::store::<Endpoints>();
    let wc = watcher::Config::default();
    let svc_changes = reflector::reflector(
        svc_writer,
        watcher(Api::<Service>::all(client.clone()), wc.clone()),
    )
    .default_backoff()
    .map(|ev| change(ev, |listed| Change::Services { listed }));
    let ep_changes = reflector::reflector(
        ep_writer,
        watcher(Api::<Endpoints>::all(client.clone()), wc),
    )
    .default_backoff()
    .map(|ev| change(ev, |listed| Change::Endpoints { listed }));
    let mut changes = std::pin::pin!(futures::stream::select(svc_changes, ep_changes));

    let recorder = Recorder::new(client, COMPONENT);
    let mut proxy = Proxy::new(config.proxy, shutdown.child_token());
    let mut reported: HashSet<ListenerKey> = HashSet::new();
    let (mut svc_listed, mut ep_listed) = (false, false);
    let mut due: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            c = changes.next() => {
                let Some(c) = c else { break };
                match c {
                    Change::Services { listed } => svc_listed |= listed,
                    Change::Endpoints { listed } => ep_listed |= listed,
                    Change::Nothing => continue,
                }
                if svc_listed && ep_listed {
                    // Soon, also when only a bind retry was scheduled (later).
                    let soon = Instant::now() + config.debounce;
                    due = Some(due.map_or(soon, |d| d.min(soon)));
                }
            }
            _ = sleep_until(due), if due.is_some() => {
                due = None;
                let table = table::build(
                    services.state().iter().map(|s| s.as_ref()),
                    endpoints.state().iter().map(|e| e.as_ref()),
                    config.node_ip,
                );
                let failures = proxy.apply(&table);
                if !failures.is_empty() {
                    due = Some(Instant::now() + config.retry_interval);
                }
                report(&recorder, &failures, &mut reported).await;
            }
        }
    }
    proxy.shutdown().await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Records a Warning event for each listener that newly failed to bind (a listener failing again
/// at the next retry is not reported again); forgets listeners that no longer fail.
async fn report(
    recorder: &Recorder,
    failures: &[BindFailure],
    reported: &mut HashSet<ListenerKey>,
) {
    let failing: HashSet<ListenerKey> = failures.iter().map(|f| f.key).collect();
    reported.retain(|k| failing.contains(k));
    for f in failures {
        let message = f.message();
        tracing::warn!(listener = %f.key, "{message}");
        if !reported.insert(f.key) {
            continue;
        }
        let obj = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(f.spec.service.namespace.clone()),
            name: Some(f.spec.service.name.clone()),
            uid: f.spec.service.uid.clone(),
            ..Default::default()
        };
        recorder
            .record(&obj, EventType::Warning, REASON_FAILED_TO_LISTEN, &message)
            .await;
    }
}
