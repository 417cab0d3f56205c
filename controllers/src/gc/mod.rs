//! The garbage collector: deletes (with propagationPolicy Background) every object whose
//! ownerReferences all point at owners that no longer exist — an owner is looked up by kind and name
//! in the dependent's namespace (or cluster-wide for cluster-scoped kinds) and must carry the
//! referenced uid. The API server itself handles the Orphan and Foreground policies; this covers the
//! default Background cascade (`kubectl delete rc web` takes its pods along).
//!
//! Driven by watches of the owners' deletions (the dependents of a deleted owner are checked at
//! once) and by a periodic sweep of every dependent, which catches what a watch missed.

pub mod owners;

use std::collections::HashMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::{DeleteParams, DynamicObject, ListParams, Preconditions, PropagationPolicy};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};

use crate::Context;
use owners::{Kind, OwnerState};

/// Time between two sweeps of every dependent.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A garbage-collection step failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Runs the collector until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) {
    let mut deletions = owner_deletions(&ctx.client);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let work = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = sweep.tick() => None,
            Some(deleted) = deletions.next() => Some(deleted),
        };
        let step = async {
            let res = match &work {
                None => sweep_all(&ctx.client).await,
                Some(deleted) => owner_deleted(&ctx.client, deleted).await,
            };
            if let Err(err) = res {
                tracing::warn!(%err, "garbage collector");
            }
        };
        // A step in progress is abandoned on shutdown: the next start sweeps again.
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = step => {}
        }
    }
}

/// A deleted owner: its namespace (None when cluster-scoped) and uid.
#[derive(Clone, Debug)]
struct Deleted {
    namespace: Option<String>,
    uid: String,
}

/// The deletions of objects of every dependent kind (which are also the usual owners).
fn owner_deletions(client: &Client) -> impl Stream<Item = Deleted> + Send + Unpin {
    let streams = owners::dependent_kinds().into_iter().map(|kind| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource);
        watcher(api, watcher::Config::default())
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Delete(obj)) => Some(Deleted {
                        namespace: obj.namespace(),
                        uid: obj.uid()?,
                    }),
                    Ok(_) => None,
                    Err(err) => {
                        tracing::debug!(%err, "garbage collector watch");
                        None
                    }
                }
            })
            .boxed()
    });
    futures::stream::select_all(streams)
}

/// Checks every dependent that references the deleted owner.
async fn owner_deleted(client: &Client, deleted: &Deleted) -> Result<(), GcError> {
    let mut owners = OwnerCache::default();
    for kind in owners::dependent_kinds() {
        let api: Api<DynamicObject> = match &deleted.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
            None => Api::all_with(client.clone(), &kind.resource),
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(api_err(format!("listing {}", kind.resource.plural)))?;
        for obj in list.items {
            let refs_deleted = obj.owner_references().iter().any(|r| r.uid == deleted.uid);
            if refs_deleted {
                collect(client, &kind, &obj, &mut owners).await?;
            }
        }
    }
    Ok(())
}

/// One pass over every dependent of every kind.
async fn sweep_all(client: &Client) -> Result<(), GcError> {
    let mut owners = OwnerCache::default();
    for kind in owners::dependent_kinds() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(api_err(format!("listing {}", kind.resource.plural)))?;
        for obj in list.items {
            if !obj.owner_references().is_empty() {
                collect(client, &kind, &obj, &mut owners).await?;
            }
        }
    }
    Ok(())
}

/// Owners looked up during one pass: (kind, namespace, name) → the uid found (None: no such object).
/// An owner found present may vanish during the pass (the next pass sees it); one found absent cannot
/// come back with the same uid, so caching never wrongly deletes.
#[derive(Default)]
struct OwnerCache(HashMap<(String, Option<String>, String), Option<Option<String>>>);

impl OwnerCache {
    async fn state(
        &mut self,
        client: &Client,
        namespace: Option<&str>,
        owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Result<OwnerState, GcError> {
        let Some(kind) = owners::resolve(&owner.api_version, &owner.kind) else {
            return Ok(OwnerState::Unknown);
        };
        let ns = if kind.namespaced { namespace } else { None };
        let key = (
            kind.resource.plural.clone(),
            ns.map(str::to_string),
            owner.name.clone(),
        );
        let found = match self.0.get(&key) {
            Some(found) => found.clone(),
            None => {
                let api: Api<DynamicObject> = match ns {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
                    None if kind.namespaced => return Ok(OwnerState::Unknown),
                    None => Api::all_with(client.clone(), &kind.resource),
                };
                let found = api
                    .get_opt(&owner.name)
                    .await
                    .map_err(api_err(format!("reading {} {}", owner.kind, owner.name)))?
                    .map(|o| o.uid());
                self.0.insert(key, found.clone());
                found
            }
        };
        Ok(owners::owner_state(
            &owner.uid,
            found.as_ref().map(Option::as_deref),
        ))
    }
}

/// Deletes `obj` (Background) when every owner it names is absent.
async fn collect(
    client: &Client,
    kind: &Kind,
    obj: &DynamicObject,
    cache: &mut OwnerCache,
) -> Result<(), GcError> {
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = obj.namespace();
    let mut states = Vec::new();
    for owner in obj.owner_references() {
        states.push(cache.state(client, ns.as_deref(), owner).await?);
    }
    if !owners::is_garbage(&states) {
        return Ok(());
    }
    let name = obj.name_any();
    tracing::info!(kind = %kind.resource.kind, namespace = ?ns, %name, "deleting an object whose owners are gone");
    let api: Api<DynamicObject> = match ns.as_deref() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
        None => Api::all_with(client.clone(), &kind.resource),
    };
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: obj.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(api_err(format!("deleting {} {name}", kind.resource.kind))(
            e,
        )),
    }
}

fn api_err(action: String) -> impl FnOnce(kube::Error) -> GcError {
    move |source| GcError::Api { action, source }
}
