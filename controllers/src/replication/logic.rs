//! The replication controller's decisions, pure: given a ReplicationController and the pods of its
//! namespace, which pods to adopt, release, create and delete, and the status to report — as
//! kube-controller-manager's replication manager decides them (its `ActivePods` ordering simplified).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, ReplicationController, ReplicationControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// One pod a plan acts on: enough to address it and to guard the write.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRef {
    /// The pod's name.
    pub name: String,
    /// Its uid (a precondition of deletions).
    pub uid: Option<String>,
    /// Its resourceVersion (a precondition of adoption and release patches).
    pub resource_version: Option<String>,
    /// Its ownerReferences as read (adoption adds one, release removes the RC's).
    pub owner_references: Vec<OwnerReference>,
}

/// What to do for one ReplicationController.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Orphans matching the selector: they get the RC as controller.
    pub adopt: Vec<PodRef>,
    /// Owned pods whose labels no longer match: they lose the RC's ownerReference and stay.
    pub release: Vec<PodRef>,
    /// How many pods to create from the template.
    pub create: usize,
    /// Active pods to delete, the least valuable first.
    pub delete: Vec<PodRef>,
    /// The status to write (counted over the pods the RC owns after adoption and release).
    pub status: ReplicationControllerStatus,
}

/// The RC's selector: `spec.selector`, or the template's labels when it is unset (as the API defaults
/// it). An empty selector selects nothing.
pub fn selector(rc: &ReplicationController) -> BTreeMap<String, String> {
    let spec = rc.spec.as_ref();
    spec.and_then(|s| s.selector.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| template_labels(rc))
        .unwrap_or_default()
}

fn template_labels(rc: &ReplicationController) -> Option<BTreeMap<String, String>> {
    rc.spec
        .as_ref()?
        .template
        .as_ref()?
        .metadata
        .as_ref()?
        .labels
        .clone()
}

/// Whether `labels` carry every pair of `selector` (an empty selector matches nothing).
pub fn matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    !selector.is_empty()
        && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
}

/// The ownerReference marked `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The controller ownerReference pods of `rc` carry.
pub fn owner_reference(rc: &ReplicationController) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ReplicationController".into(),
        name: rc.metadata.name.clone().unwrap_or_default(),
        uid: rc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a pod counts as active: not being deleted and not finished.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The pod's Ready condition when it is True: its last transition time (if known).
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod is Ready.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Whether the pod has been Ready for `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .saturating_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .is_ok_and(|t| t <= now),
    }
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

/// kube's `ActivePods` order, simplified: the pod to delete first sorts first. Unscheduled before
/// scheduled, Pending < Unknown < Running, not Ready before Ready, then the newest first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        // Newest first: a missing creation time counts as the newest.
        .then_with(|| {
            match (
                &a.metadata.creation_timestamp,
                &b.metadata.creation_timestamp,
            ) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(x),
            }
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        owner_references: pod.metadata.owner_references.clone().unwrap_or_default(),
    }
}

/// Decides what to do for `rc` given every pod of its namespace, at time `now`.
pub fn plan(rc: &ReplicationController, pods: &[Pod], now: Timestamp) -> Plan {
    let selector = selector(rc);
    let uid = rc.metadata.uid.as_deref();
    let rc_deleting = rc.metadata.deletion_timestamp.is_some();
    let mut out = Plan::default();
    let mut owned: Vec<&Pod> = Vec::new();
    for pod in pods {
        let labels = pod.metadata.labels.as_ref();
        let selected = matches(&selector, labels);
        let pod_deleting = pod.metadata.deletion_timestamp.is_some();
        match controller_ref(&pod.metadata) {
            Some(r) if uid.is_some_and(|u| u == r.uid) => {
                if selected {
                    owned.push(pod);
                } else if !pod_deleting {
                    out.release.push(pod_ref(pod));
                }
            }
            Some(_) => {}
            None if selected && !rc_deleting && !pod_deleting && uid.is_some() => {
                out.adopt.push(pod_ref(pod));
                owned.push(pod);
            }
            None => {}
        }
    }
    let mut active: Vec<&Pod> = owned.into_iter().filter(|p| is_active(p)).collect();
    out.status = status(rc, &active, now);
    let wanted = rc
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0);
    let wanted = usize::try_from(wanted).unwrap_or(0);
    if active.len() < wanted && !rc_deleting {
        out.create = wanted - active.len();
    } else if active.len() > wanted {
        active.sort_by(|a, b| deletion_order(a, b));
        out.delete = active[..active.len() - wanted]
            .iter()
            .map(|p| pod_ref(p))
            .collect();
    }
    out
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The status over the RC's active pods (conditions are kept as they are).
pub fn status(
    rc: &ReplicationController,
    active: &[&Pod],
    now: Timestamp,
) -> ReplicationControllerStatus {
    let template = template_labels(rc).unwrap_or_default();
    let min_ready = rc
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let available = active
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    ReplicationControllerStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: Some(count(fully_labeled)),
        ready_replicas: Some(count(ready)),
        available_replicas: Some(count(available)),
        observed_generation: rc.metadata.generation,
        conditions: rc.status.as_ref().and_then(|s| s.conditions.clone()),
    }
}

/// Whether the status the RC carries already says what `wanted` says (absent counters read as 0).
pub fn status_current(rc: &ReplicationController, wanted: &ReplicationControllerStatus) -> bool {
    let norm = |s: &ReplicationControllerStatus| {
        (
            s.replicas,
            s.fully_labeled_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            s.observed_generation,
        )
    };
    rc.status.as_ref().is_some_and(|s| norm(s) == norm(wanted))
}

/// A new pod from the RC's template: `generateName: <rc>-`, the template's labels, annotations,
/// finalizers and spec, and the RC as controller owner.
pub fn pod_from_template(rc: &ReplicationController) -> Pod {
    let template = rc.spec.as_ref().and_then(|s| s.template.clone());
    let tmeta = template
        .as_ref()
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                rc.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: rc.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner_reference(rc)]),
            ..Default::default()
        },
        spec: template.and_then(|t| t.spec),
        status: None,
    }
}

/// Pods one sync creates at most; the rest wait for the next sync (kube's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// kube's slow start: `count` creations in batches of 1, 2, 4, … (the last one what is left), so a
/// template the API server rejects costs one failed call, not hundreds.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let (mut left, mut size) = (count, 1usize);
    while left > 0 {
        let b = size.min(left);
        batches.push(b);
        left -= b;
        size = size.saturating_mul(2);
    }
    batches
}

/// Spacing of syncs that had nothing to create or delete: while pods change status (a rollout of
/// thousands), back-to-back syncs would each list every pod of the namespace only to recount
/// the status. Syncs after one that acted are never delayed.
pub const QUIET_SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A quiet sync waits at least this many times as long as the last one took, so that listing a large
/// namespace for a status recount takes a bounded share of the time (a tenth), however many pods.
pub const QUIET_SYNC_COST_FACTOR: u32 = 10;

/// When each RC last had a sync that changed no pods, and how long it took (pure: time is an argument).
#[derive(Debug, Default)]
pub struct QuietSyncs {
    last: std::collections::HashMap<String, (std::time::Instant, std::time::Duration)>,
}

impl QuietSyncs {
    /// How long the next sync of `rc_uid` should wait, if at all.
    pub fn wait(&self, rc_uid: &str, now: std::time::Instant) -> Option<std::time::Duration> {
        let (at, took) = *self.last.get(rc_uid)?;
        let due = at + QUIET_SYNC_EVERY.max(took * QUIET_SYNC_COST_FACTOR);
        (due > now).then(|| due - now)
    }

    /// Records a sync that finished at `now` after `took`; `acted` when it created or deleted pods.
    pub fn record(
        &mut self,
        rc_uid: &str,
        now: std::time::Instant,
        took: std::time::Duration,
        acted: bool,
    ) {
        if acted {
            self.last.remove(rc_uid);
        } else {
            self.last.insert(rc_uid.to_string(), (now, took));
        }
    }

    /// Forgets an RC (deleted).
    pub fn forget(&mut self, rc_uid: &str) {
        self.last.remove(rc_uid);
    }
}
