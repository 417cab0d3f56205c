//! The endpoints controller: keeps an Endpoints object beside every Service with a selector, listing the
//! Service's pods (ready ones in `addresses`, the others in `notReadyAddresses`) on the ports the
//! Service's target ports resolve to. Endpoints of deleted Services are deleted.
//!
//! Services, pods and Endpoints are mirrored by kube-runtime reflectors; every change is mapped to the
//! Services it concerns, which a single worker re-syncs from the mirrors (deduplicated, retried with
//! backoff on failure).

mod logic;

pub use logic::{
    desired_endpoints, endpoint_port, is_ready, plan, selects, Action, CONTROLLER_NAME,
    HOST_PORTS_ANNOTATION, MANAGED_BY_ANNOTATION,
};

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{EventType, Recorder};
use crate::Context;

/// A Service (and its Endpoints) by namespace and name.
type Key = (String, String);

/// Writing one Service's Endpoints failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The API server refused the write or could not be reached.
    #[error("{verb} endpoints {namespace}/{name}: {source}")]
    Write {
        /// `create`, `update` or `delete`.
        verb: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl SyncError {
    /// Conflicts and races with our own stale mirror: retried quietly, not reported as events.
    fn is_race(&self) -> bool {
        let SyncError::Write { source, .. } = self;
        matches!(source, kube::Error::Api(s) if s.code == 409 || s.code == 404)
    }

    /// The namespace is being deleted: nothing new may be written there, and the namespace's
    /// removal takes the Service with it (kube's controller drops these silently too).
    fn is_namespace_terminating(&self) -> bool {
        let SyncError::Write { source, .. } = self;
        matches!(source, kube::Error::Api(s) if s.code == 403 && s.message.contains("is being terminated"))
    }
}

#[derive(Clone)]
struct Mirrors {
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Runs the endpoints controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) {
    let client = ctx.client.clone();
    let (services, svc_writer) = reflector::store::<Service>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (endpoints, ep_writer) = reflector::store::<Endpoints>();
    let mirrors = Mirrors {
        services,
        pods,
        endpoints,
    };
    let wc = watcher::Config::default();
    let svc_keys = reflector::reflector(
        svc_writer,
        watcher(Api::<Service>::all(client.clone()), wc.clone()),
    )
    .default_backoff()
    .map(|ev| keys_of(ev, |s: &Service| vec![key_of(s)]));
    let ep_keys = reflector::reflector(
        ep_writer,
        watcher(Api::<Endpoints>::all(client.clone()), wc.clone()),
    )
    .default_backoff()
    .map(|ev| keys_of(ev, |e: &Endpoints| vec![key_of(e)]));
    let m = mirrors.clone();
    let pod_keys = reflector::reflector(pod_writer, watcher(Api::<Pod>::all(client.clone()), wc))
        .default_backoff()
        .map(move |ev| keys_of(ev, |p: &Pod| services_of_pod(&m, p)));
    let triggers = futures::stream::select(svc_keys, futures::stream::select(ep_keys, pod_keys));

    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(client.clone(), CONTROLLER_NAME);
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = forward(triggers, tx) => {}
        _ = work(&ctx, client, mirrors, recorder, rx) => {}
    }
}

/// The keys one watch event concerns (none for errors and list boundaries).
fn keys_of<K>(
    ev: Result<watcher::Event<K>, watcher::Error>,
    map: impl FnOnce(&K) -> Vec<Key>,
) -> Vec<Key> {
    match ev {
        Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o)) => {
            map(&o)
        }
        Ok(watcher::Event::Init | watcher::Event::InitDone) => Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "endpoints controller watch");
            Vec::new()
        }
    }
}

fn key_of<K: ResourceExt>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

/// The Services a pod change concerns: those selecting it now, and those whose Endpoints list it.
fn services_of_pod(m: &Mirrors, pod: &Pod) -> Vec<Key> {
    let mut keys: BTreeSet<Key> = m
        .services
        .state()
        .iter()
        .filter(|s| selects(s, pod))
        .map(|s| key_of(s.as_ref()))
        .collect();
    if let Some(uid) = pod.metadata.uid.as_deref() {
        let namespace = pod.namespace();
        for ep in m.endpoints.state() {
            if ep.namespace() == namespace && lists_pod(&ep, uid) {
                keys.insert(key_of(ep.as_ref()));
            }
        }
    }
    keys.into_iter().collect()
}

fn lists_pod(ep: &Endpoints, uid: &str) -> bool {
    ep.subsets.iter().flatten().any(|s| {
        s.addresses
            .iter()
            .chain(s.not_ready_addresses.iter())
            .flatten()
            .any(|a| a.target_ref.as_ref().and_then(|t| t.uid.as_deref()) == Some(uid))
    })
}

async fn forward(triggers: impl Stream<Item = Vec<Key>>, tx: mpsc::UnboundedSender<Key>) {
    let mut triggers = std::pin::pin!(triggers);
    while let Some(keys) = triggers.next().await {
        for key in keys {
            if tx.send(key).is_err() {
                return;
            }
        }
    }
}

struct Retry {
    at: Instant,
    attempts: u32,
}

/// Re-syncs the keys it receives once the mirrors have their initial lists; failed keys are retried
/// with exponential backoff (100 ms doubling up to 30 s).
async fn work(
    ctx: &Context,
    client: Client,
    m: Mirrors,
    recorder: Recorder,
    mut rx: mpsc::UnboundedReceiver<Key>,
) {
    let ready = async {
        m.services.wait_until_ready().await?;
        m.pods.wait_until_ready().await?;
        m.endpoints.wait_until_ready().await
    };
    if ready.await.is_err() {
        return;
    }
    let mut pending: BTreeSet<Key> = BTreeSet::new();
    let mut retries: HashMap<Key, Retry> = HashMap::new();
    loop {
        let next_retry = retries.values().map(|r| r.at).min();
        tokio::select! {
            key = rx.recv() => match key {
                Some(k) => { pending.insert(k); }
                None => return,
            },
            _ = sleep_until(next_retry), if next_retry.is_some() => {
                let now = Instant::now();
                pending.extend(retries.iter().filter(|(_, r)| r.at <= now).map(|(k, _)| k.clone()));
            }
        }
        while let Ok(k) = rx.try_recv() {
            pending.insert(k);
        }
        for key in std::mem::take(&mut pending) {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            match sync(&client, &m, &key).await {
                Ok(()) => {
                    retries.remove(&key);
                }
                Err(e) => {
                    let attempts = retries.get(&key).map_or(0, |r| r.attempts) + 1;
                    let delay = Duration::from_millis(100)
                        .saturating_mul(1 << attempts.min(9))
                        .min(Duration::from_secs(30));
                    if e.is_namespace_terminating() {
                        retries.remove(&key);
                        continue;
                    }
                    if e.is_race() {
                        tracing::debug!(error = %e, "endpoints sync raced; retrying");
                    } else {
                        tracing::warn!(error = %e, "endpoints sync failed; retrying");
                        report(&recorder, &m, &key, &e).await;
                    }
                    retries.insert(
                        key,
                        Retry {
                            at: Instant::now() + delay,
                            attempts,
                        },
                    );
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A Warning event on the Service about a failed write.
async fn report(recorder: &Recorder, m: &Mirrors, key: &Key, e: &SyncError) {
    let svc = m
        .services
        .get(&ObjectRef::<Service>::new(&key.1).within(&key.0));
    if let Some(svc) = svc {
        let SyncError::Write { verb, .. } = e;
        let reason = match *verb {
            "create" => "FailedToCreateEndpoint",
            "delete" => "FailedToDeleteEndpoint",
            _ => "FailedToUpdateEndpoint",
        };
        recorder
            .publish(svc.as_ref(), EventType::Warning, reason, &e.to_string())
            .await;
    }
}

/// Brings one Service's Endpoints in line with the mirrors.
async fn sync(client: &Client, m: &Mirrors, key: &Key) -> Result<(), SyncError> {
    let (namespace, name) = key;
    let svc = m
        .services
        .get(&ObjectRef::<Service>::new(name).within(namespace));
    let existing = m
        .endpoints
        .get(&ObjectRef::<Endpoints>::new(name).within(namespace));
    let pods = m
        .pods
        .state_filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()));
    let action = plan(
        svc.as_deref(),
        existing.as_deref(),
        pods.iter().map(|p| p.as_ref()),
    );
    let api: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
    let err = |verb| {
        move |source| SyncError::Write {
            verb,
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        }
    };
    match action {
        Action::Nothing => Ok(()),
        Action::Create(ep) => {
            tracing::debug!(%namespace, %name, "creating endpoints");
            api.create(&PostParams::default(), &ep)
                .await
                .map(drop)
                .map_err(err("create"))
        }
        Action::Replace(ep) => {
            tracing::debug!(%namespace, %name, "updating endpoints");
            api.replace(name, &PostParams::default(), &ep)
                .await
                .map(drop)
                .map_err(err("update"))
        }
        Action::Delete => {
            tracing::debug!(%namespace, %name, "deleting endpoints of a deleted service");
            let uid = existing.and_then(|e| e.metadata.uid.clone());
            let dp = DeleteParams {
                preconditions: uid.map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(name, &dp).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(err("delete")(e)),
            }
        }
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod mapping_tests;
