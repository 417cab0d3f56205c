//! The ReplicationController controller: keeps `spec.replicas` pods from `spec.template` for every RC,
//! adopting matching orphans and releasing pods whose labels no longer match, and reports the counts
//! through the status subresource. A kube-runtime `Controller` over RCs that owns Pods, plus a watch of
//! all pods mapped to the RCs whose selector they match (for adoption).
//!
//! Each reconcile lists its namespace's pods from the API server (a consistent read) instead of a
//! cache, so no "expectations" are needed to avoid acting twice on pods a cache has not seen yet.

pub mod logic;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{watcher, Controller};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::Context;
use logic::PodRef;

/// How often every RC is reconciled even without events.
const RESYNC: Duration = Duration::from_secs(60);
/// Delay before retrying a failed reconcile.
const RETRY: Duration = Duration::from_secs(5);
/// Pod creations (within a slow-start batch) and deletions in flight at once for one RC.
const PARALLEL: usize = 64;

/// A reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The RC has no namespace.
    #[error("replication controller {0} has no namespace")]
    NoNamespace(String),
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

fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError {
    let action = action.into();
    move |source| ReconcileError::Api { action, source }
}

/// Whether an API error is a 404 (or 409: the object changed or went meanwhile).
fn gone_or_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

/// Runs the controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) {
    let rcs: Api<ReplicationController> = Api::all(ctx.client.clone());
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let controller = Controller::new(rcs, watcher::Config::default());
    let store = controller.store();
    let shutdown = ctx.shutdown.clone();
    controller
        .owns(pods.clone(), watcher::Config::default())
        .watches(pods, watcher::Config::default(), move |pod| {
            matching_rcs(&store, &pod)
        })
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(
            reconcile,
            error_policy,
            Arc::new(RcContext {
                ctx,
                quiet: Mutex::new(logic::QuietSyncs::default()),
            }),
        )
        .for_each(|res| async move {
            if let Err(err) = res {
                tracing::debug!(%err, "replication controller");
            }
        })
        .await;
}

/// The RCs an orphan pod could be adopted by: those in its namespace whose selector it matches.
/// Pods with a controller are left to `owns`.
fn matching_rcs(
    store: &Store<ReplicationController>,
    pod: &Pod,
) -> Vec<ObjectRef<ReplicationController>> {
    if logic::controller_ref(&pod.metadata).is_some() {
        return Vec::new();
    }
    let ns = pod.metadata.namespace.as_deref();
    store
        .state()
        .iter()
        .filter(|rc| rc.metadata.namespace.as_deref() == ns)
        .filter(|rc| logic::matches(&logic::selector(rc), pod.metadata.labels.as_ref()))
        .map(|rc| ObjectRef::from_obj(rc.as_ref()))
        .collect()
}

/// What every sync shares: the controllers' context and when each RC last synced quietly.
struct RcContext {
    ctx: Context,
    /// Short critical sections only, never held across an await.
    quiet: Mutex<logic::QuietSyncs>,
}

impl RcContext {
    fn quiet<T>(&self, f: impl FnOnce(&mut logic::QuietSyncs) -> T) -> T {
        let mut guard = match self.quiet.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

fn error_policy(rc: Arc<ReplicationController>, err: &ReconcileError, _: Arc<RcContext>) -> Action {
    tracing::warn!(rc = %rc.name_any(), %err, "reconciling replication controller");
    Action::requeue(RETRY)
}

/// Brings one RC's pods and status in line with its spec.
async fn reconcile(
    rc: Arc<ReplicationController>,
    rcx: Arc<RcContext>,
) -> Result<Action, ReconcileError> {
    let rc_uid = rc.metadata.uid.clone().unwrap_or_default();
    // Status-only syncs are spaced out; triggers arriving meanwhile fold into this one.
    if let Some(wait) = rcx.quiet(|q| q.wait(&rc_uid, std::time::Instant::now())) {
        tokio::time::sleep(wait).await;
    }
    let started = std::time::Instant::now();
    let ctx = &rcx.ctx;
    let name = rc.name_any();
    let ns = rc
        .namespace()
        .ok_or_else(|| ReconcileError::NoNamespace(name.clone()))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let rcs: Api<ReplicationController> = Api::namespaced(ctx.client.clone(), &ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .map_err(api_err(format!("listing pods in {ns}")))?;
    let mut plan = logic::plan(&rc, &list.items, k8s_openapi::jiff::Timestamp::now());
    if !plan.adopt.is_empty() && !can_adopt(&rcs, &rc).await? {
        plan.adopt.clear();
    }
    // Act on everything, then report the first failure (after the status is written).
    let mut first_err = None;
    for pod in &plan.adopt {
        let mut refs = pod.owner_references.clone();
        refs.push(logic::owner_reference(&rc));
        keep_first(&mut first_err, set_owners(&pods, pod, refs).await);
    }
    let uid = rc.metadata.uid.clone().unwrap_or_default();
    for pod in &plan.release {
        let refs: Vec<_> = pod
            .owner_references
            .iter()
            .filter(|r| r.uid != uid)
            .cloned()
            .collect();
        keep_first(&mut first_err, set_owners(&pods, pod, refs).await);
    }
    let template = logic::pod_from_template(&rc);
    // At most BURST_REPLICAS per sync, in slow-start batches; a failing batch ends the sync.
    let to_create = plan.create.min(logic::BURST_REPLICAS);
    let mut created = Vec::new();
    for batch in logic::slow_start_batches(to_create) {
        let results = futures::stream::iter(0..batch)
            .map(|_| create_pod(&pods, &template))
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        let failed = results.iter().any(Result::is_err);
        created.extend(results);
        if failed {
            break;
        }
    }
    let deleted = futures::stream::iter(plan.delete.clone())
        .map(|p| {
            let pods = pods.clone();
            async move { delete_pod(&pods, &p).await }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    for res in created.into_iter().chain(deleted) {
        keep_first(&mut first_err, res);
    }
    if !logic::status_current(&rc, &plan.status) {
        let patch = json!({ "status": plan.status });
        let res = rcs
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        match res {
            Ok(_) => {}
            Err(e) if gone_or_conflict(&e) => {}
            Err(e) => keep_first(
                &mut first_err,
                Err(api_err(format!("updating status of {ns}/{name}"))(e)),
            ),
        }
    }
    let acted = plan.create > 0 || !plan.delete.is_empty();
    rcx.quiet(|q| q.record(&rc_uid, std::time::Instant::now(), started.elapsed(), acted));
    match first_err {
        Some(err) => Err(err),
        // More to create than one burst: the next sync follows at once.
        None if plan.create > to_create => Ok(Action::requeue(Duration::ZERO)),
        None => Ok(Action::requeue(RESYNC)),
    }
}

fn keep_first(first: &mut Option<ReconcileError>, res: Result<(), ReconcileError>) {
    if let Err(e) = res {
        if first.is_none() {
            *first = Some(e);
        }
    }
}

/// Adoption is allowed only while the RC (read afresh) is the same object and not being deleted.
async fn can_adopt(
    rcs: &Api<ReplicationController>,
    rc: &ReplicationController,
) -> Result<bool, ReconcileError> {
    let name = rc.name_any();
    match rcs.get_opt(&name).await {
        Ok(Some(fresh)) => Ok(
            fresh.metadata.uid == rc.metadata.uid && fresh.metadata.deletion_timestamp.is_none()
        ),
        Ok(None) => Ok(false),
        Err(e) => Err(api_err(format!("reading replication controller {name}"))(e)),
    }
}

/// Replaces a pod's ownerReferences, guarded by the resourceVersion it was read at.
async fn set_owners(
    pods: &Api<Pod>,
    pod: &PodRef,
    refs: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), ReconcileError> {
    let patch = json!({
        "metadata": {
            "ownerReferences": refs,
            "resourceVersion": pod.resource_version,
        }
    });
    match pods
        .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => Err(api_err(format!("updating the owners of pod {}", pod.name))(
            e,
        )),
    }
}

async fn create_pod(pods: &Api<Pod>, template: &Pod) -> Result<(), ReconcileError> {
    pods.create(&PostParams::default(), template)
        .await
        .map(|_| ())
        .map_err(api_err("creating a pod"))
}

async fn delete_pod(pods: &Api<Pod>, pod: &PodRef) -> Result<(), ReconcileError> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match pods.delete(&pod.name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if gone_or_conflict(&e) => Ok(()),
        Err(e) => Err(api_err(format!("deleting pod {}", pod.name))(e)),
    }
}
