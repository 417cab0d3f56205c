//! The framework's I/O: the master subscription, the pod watch, binding, status writes, events.
//! One task owns all state; master events, pod events and a housekeeping tick are handled in
//! turn, so there are no locks.

use super::demand::{demand, Demand};
use super::matching::{place, unschedulable_message, OfferView};
use super::podstatus::{pod_status, ContainerTask};
use super::tasks::{launch_group, split_task_id};
use super::writes::{job, Job, Writes};
use super::FrameworkConfig;
use crate::context::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use offer_scheduler::client::{EventStream, MasterClient};
use offer_scheduler::master::TaskState;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

const ID_NAMESPACE: &str = "kube-system";
const ID_CONFIGMAP: &str = "kumos-framework";
const HOST_IP: &str = "127.0.0.1";
/// FailedScheduling events for one pod are not repeated more often than this.
const UNSCHEDULABLE_EVERY: Duration = Duration::from_secs(5);
/// At most one REVIVE per this interval for new pods (the rest wait for the next tick).
const REVIVE_EVERY: Duration = Duration::from_millis(250);
/// Bindings in flight at once while an OFFERS event is handled.
const BIND_PARALLEL: usize = 64;
/// Status patches, events and acknowledgements in flight at once (see [`Writes`]).
const WRITES_PARALLEL: usize = 64;
/// How long writes still queued at shutdown may take.
const DRAIN_AT_SHUTDOWN: Duration = Duration::from_secs(2);

struct Launched {
    namespace: String,
    name: String,
    node: String,
    agent_id: String,
    containers: Vec<ContainerTask>,
    start_time: String,
    killing: bool,
}

struct Framework {
    cfg: FrameworkConfig,
    client: kube::Client,
    master: MasterClient,
    stream: Option<String>,
    framework_id: Option<String>,
    pods: HashMap<String, Pod>,
    launched: HashMap<String, Launched>,
    unschedulable: HashMap<String, (String, Instant)>,
    suppressed: bool,
    last_revive: Option<Instant>,
    revive_pending: bool,
    events: crate::events::Recorder,
    writes: Writes,
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn obj_ref(pod: &Pod) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Runs the framework until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context, cfg: FrameworkConfig) {
    let mut fw = Framework {
        master: MasterClient::new(&cfg.master_url, "/api/v1/scheduler", None),
        events: crate::events::Recorder::new(ctx.client.clone(), "kumos-scheduler"),
        cfg,
        client: ctx.client.clone(),
        stream: None,
        framework_id: None,
        pods: HashMap::new(),
        launched: HashMap::new(),
        unschedulable: HashMap::new(),
        suppressed: false,
        last_revive: None,
        revive_pending: false,
        writes: Writes::new(WRITES_PARALLEL),
    };
    fw.framework_id = fw.load_framework_id().await;
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let mut pod_events = watcher(api, watcher::Config::default()).boxed();
    fw.run_sessions(&ctx, &mut pod_events).await;
    // Status and events already decided still reach the API server, briefly.
    let _ = tokio::time::timeout(DRAIN_AT_SHUTDOWN, fw.writes.drain()).await;
}

impl Framework {
    async fn run_sessions(
        &mut self,
        ctx: &Context,
        pod_events: &mut (impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>
                  + Unpin),
    ) {
        let fw = self;
        let mut retry = Duration::from_millis(200);
        loop {
            let sub = tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                s = fw.subscribe() => s,
            };
            match sub {
                Ok(stream) => {
                    retry = Duration::from_millis(200);
                    fw.session(stream, pod_events, ctx).await;
                    fw.stream = None;
                }
                Err(err) => {
                    tracing::warn!(%err, "framework cannot subscribe to the master; retrying")
                }
            }
            let pause = tokio::time::sleep(retry);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return,
                    _ = &mut pause => break,
                    Some(ev) = pod_events.next() => fw.on_pod_event(ev).await,
                    _ = fw.writes.next() => {}
                }
            }
            retry = (retry * 2).min(Duration::from_secs(5));
        }
    }

    async fn load_framework_id(&self) -> Option<String> {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), ID_NAMESPACE);
        let cm = cms.get_opt(ID_CONFIGMAP).await.ok().flatten()?;
        cm.data?.get("frameworkId").cloned()
    }

    async fn save_framework_id(&self, id: &str) {
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), ID_NAMESPACE);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": ID_CONFIGMAP, "namespace": ID_NAMESPACE},
            "data": {"frameworkId": id}});
        let pp = PatchParams::apply("kumos-scheduler").force();
        if let Err(err) = cms.patch(ID_CONFIGMAP, &pp, &Patch::Apply(&cm)).await {
            tracing::warn!(%err, "cannot persist the framework id");
        }
    }

    async fn subscribe(&mut self) -> Result<EventStream, offer_scheduler::client::ClientError> {
        let mut info = json!({
            "user": "root",
            "name": "kumos-kubernetes",
            "roles": [self.cfg.role],
            "capabilities": [{"type": "MULTI_ROLE"}],
            "failover_timeout": self.cfg.failover_timeout.as_secs_f64(),
        });
        let mut call = json!({"type": "SUBSCRIBE"});
        if let Some(id) = &self.framework_id {
            info["id"] = json!({ "value": id });
            call["framework_id"] = json!({ "value": id });
        }
        call["subscribe"] = json!({ "framework_info": info });
        self.master.subscribe(&call).await
    }

    async fn session(
        &mut self,
        mut stream: EventStream,
        pod_events: &mut (impl futures::Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>
                  + Unpin),
        ctx: &Context,
    ) {
        self.stream = Some(stream.stream_id.clone());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                ev = stream.next() => match ev {
                    Ok(Some(ev)) => {
                        if !self.on_master_event(ev).await {
                            return;
                        }
                    }
                    Ok(None) => { tracing::warn!("the master ended the framework's stream"); return; }
                    Err(err) => { tracing::warn!(%err, "framework lost the master"); return; }
                },
                Some(ev) = pod_events.next() => self.on_pod_event(ev).await,
                _ = tick.tick() => self.housekeeping().await,
                _ = self.writes.next() => {}
            }
        }
    }

    async fn call(&self, kind: &str, body: Json) {
        let (Some(sid), Some(fid)) = (&self.stream, &self.framework_id) else {
            return;
        };
        let mut call = json!({"type": kind, "framework_id": {"value": fid}});
        if !body.is_null() {
            call[kind.to_ascii_lowercase()] = body;
        }
        if let Err(err) = self.master.call(&call, sid).await {
            tracing::warn!(%err, call = kind, "scheduler call failed");
        }
    }

    /// Returns false when the session must end (ERROR from the master).
    async fn on_master_event(&mut self, ev: Json) -> bool {
        let kind = ev.get("type").and_then(Json::as_str).unwrap_or_default();
        match kind {
            "SUBSCRIBED" => {
                let id = ev
                    .pointer("/subscribed/framework_id/value")
                    .and_then(Json::as_str);
                if let Some(id) = id {
                    tracing::info!(framework_id = id, "Kubernetes framework subscribed");
                    if self.framework_id.as_deref() != Some(id) {
                        self.framework_id = Some(id.to_string());
                        self.save_framework_id(id).await;
                    }
                }
                self.suppressed = false;
                // Learn the state of every task we own (nothing is launched twice after a restart).
                self.call("RECONCILE", json!({"tasks": []})).await;
            }
            "OFFERS" => {
                let offers = ev
                    .pointer("/offers/offers")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default();
                self.on_offers(offers).await;
            }
            "UPDATE" => {
                if let Some(status) = ev.pointer("/update/status") {
                    self.on_update(status.clone()).await;
                }
            }
            "ERROR" => {
                let msg = ev
                    .pointer("/error/message")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                tracing::error!(message = msg, "the master sent ERROR");
                if msg.contains("removed") {
                    self.framework_id = None;
                }
                return false;
            }
            _ => {}
        }
        true
    }

    fn is_pending(&self, pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
        let scheduler = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        node.is_empty()
            && pod.metadata.deletion_timestamp.is_none()
            && phase == "Pending"
            && self.cfg.scheduler_names.iter().any(|s| s == scheduler)
            && !self.launched.contains_key(&uid(pod))
    }

    fn pending(&self) -> Vec<&Pod> {
        let mut p: Vec<&Pod> = self.pods.values().filter(|p| self.is_pending(p)).collect();
        p.sort_by(|a, b| {
            (
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                &a.metadata.name,
            )
                .cmp(&(
                    b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    &b.metadata.name,
                ))
        });
        p
    }

    async fn on_offers(&mut self, offers: Vec<Json>) {
        let views: Vec<OfferView> = offers.iter().map(offer_view).collect();
        let pending: Vec<Pod> = self.pending().into_iter().cloned().collect();
        let demands: Vec<Demand> = pending.iter().map(demand).collect();
        let (placements, unfit) = place(&views, &demands);
        // Bind every placed pod, BIND_PARALLEL at once; only bound pods are launched.
        let client = self.client.clone();
        let bound: Vec<_> = futures::stream::iter(placements)
            .map(|p| {
                let (pod, view) = (&pending[p.pod], &views[p.offer]);
                let annotations = host_ports_annotation(&demands[p.pod], &p.host_ports);
                let bind = bind_pod(client.clone(), pod, view.hostname.clone(), annotations);
                async move { (p, bind.await) }
            })
            .buffer_unordered(BIND_PARALLEL)
            .collect()
            .await;
        let mut ops: BTreeMap<usize, Vec<Json>> = BTreeMap::new();
        for (p, ok) in bound {
            if !ok {
                continue;
            }
            let (pod, view) = (&pending[p.pod], &views[p.offer]);
            let (ns, name) = (
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default(),
            );
            self.unschedulable.remove(&uid(pod));
            self.event(
                pod,
                crate::events::EventType::Normal,
                "Scheduled",
                format!("Successfully assigned {ns}/{name} to {}", view.hostname),
            );
            let fid = self.framework_id.clone().unwrap_or_default();
            let op = launch_group(
                pod,
                &demands[p.pod],
                &p.host_ports,
                &view.agent_id,
                &fid,
                &self.cfg.role,
            );
            ops.entry(p.offer).or_default().push(op);
            self.track_launch(pod, view);
        }
        // One ACCEPT per used offer, sent together; one DECLINE for all the others.
        let mut accepts = Vec::new();
        let mut declined = Vec::new();
        for (i, offer) in offers.iter().enumerate() {
            let offer_id = offer.get("id").cloned().unwrap_or(Json::Null);
            match ops.remove(&i) {
                Some(operations) => accepts.push(self.call_job(
                    "ACCEPT",
                    json!({"offer_ids": [offer_id], "operations": operations,
                        "filters": {"refuse_seconds": 5.0}}),
                )),
                None => declined.push(offer_id),
            }
        }
        futures::future::join_all(accepts.into_iter().flatten().map(|j| j())).await;
        if !declined.is_empty() {
            self.call(
                "DECLINE",
                json!({"offer_ids": declined, "filters": {"refuse_seconds": 5.0}}),
            )
            .await;
        }
        for (pi, reasons) in unfit {
            let msg = unschedulable_message(views.len(), &reasons);
            self.unschedulable_pod(&pending[pi], msg);
        }
    }

    /// A scheduler call as a job to run later or concurrently (`None` without a session).
    fn call_job(&self, kind: &str, body: Json) -> Option<Job> {
        let (Some(sid), Some(fid)) = (self.stream.clone(), &self.framework_id) else {
            return None;
        };
        let mut call = json!({"type": kind, "framework_id": {"value": fid}});
        if !body.is_null() {
            call[kind.to_ascii_lowercase()] = body;
        }
        let master = self.master.clone();
        let kind = kind.to_string();
        Some(job(move || async move {
            if let Err(err) = master.call(&call, &sid).await {
                tracing::warn!(%err, call = kind, "scheduler call failed");
            }
        }))
    }

    /// Records an event about `pod` in the background (in order with other events).
    fn event(
        &mut self,
        pod: &Pod,
        type_: crate::events::EventType,
        reason: &'static str,
        message: String,
    ) {
        let events = self.events.clone();
        let obj = obj_ref(pod);
        self.writes.ordered(job(move || async move {
            events.record(&obj, type_, reason, &message).await;
        }));
    }

    fn track_launch(&mut self, pod: &Pod, view: &OfferView) {
        let spec = pod.spec.clone().unwrap_or_default();
        let containers = spec
            .containers
            .iter()
            .map(|c| ContainerTask {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        self.launched.insert(
            uid(pod),
            Launched {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
                node: view.hostname.clone(),
                agent_id: view.agent_id.clone(),
                containers,
                start_time: now_rfc3339(),
                killing: false,
            },
        );
    }

    fn unschedulable_pod(&mut self, pod: &Pod, msg: String) {
        let key = uid(pod);
        let due = match self.unschedulable.get(&key) {
            Some((last, at)) => *last != msg || at.elapsed() >= UNSCHEDULABLE_EVERY,
            None => true,
        };
        if !due {
            return;
        }
        self.unschedulable
            .insert(key.clone(), (msg.clone(), Instant::now()));
        self.event(
            pod,
            crate::events::EventType::Warning,
            "FailedScheduling",
            msg.clone(),
        );
        let (ns, name) = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        let status = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": msg, "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}]}});
        self.writes
            .keyed(key, patch_status_job(self.client.clone(), ns, name, status));
    }

    async fn on_update(&mut self, status: Json) {
        let Some(task_id) = status
            .pointer("/task_id/value")
            .and_then(Json::as_str)
            .map(str::to_string)
        else {
            return;
        };
        let agent_id = status
            .pointer("/agent_id/value")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        // Acknowledge at once: the agent sends the task's next update without waiting for this
        // one's patch. Safe because the master keeps the latest state: after a framework restart,
        // reconciliation reports it again and the status is rewritten.
        if let Some(uuid) = status.get("uuid") {
            let ack = json!({"agent_id": {"value": agent_id}, "task_id": {"value": task_id}, "uuid": uuid});
            if let Some(job) = self.call_job("ACKNOWLEDGE", ack) {
                self.writes.urgent(job);
            }
        }
        if let Some((pod_uid, container)) = split_task_id(&task_id) {
            self.adopt(pod_uid, &agent_id);
            let Applied { changed, first_run } = self.apply_update(pod_uid, container, &status);
            if let Some(pod) = self.pods.get(pod_uid).cloned() {
                if first_run {
                    let image = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.iter().find(|c| c.name == container))
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default();
                    // The kubelet's three events for a container that starts.
                    for (reason, message) in [
                        (
                            "Pulled",
                            format!("Container image \"{image}\" already present on machine"),
                        ),
                        ("Created", format!("Created container {container}")),
                        ("Started", format!("Started container {container}")),
                    ] {
                        self.event(&pod, crate::events::EventType::Normal, reason, message);
                    }
                }
                // A re-sent update (the agent had no acknowledgement yet) changes nothing: writing
                // the same status again would only add load when the cluster is already slow.
                if changed {
                    self.write_status(pod_uid);
                }
            } else {
                // The pod is gone: its tasks must not outlive it.
                self.kill_pod(pod_uid, None).await;
            }
            self.finish_deletion(pod_uid).await;
        }
    }

    /// After a restart, tasks reported by reconciliation are re-attached to their pods.
    fn adopt(&mut self, pod_uid: &str, agent_id: &str) {
        if self.launched.contains_key(pod_uid) {
            return;
        }
        let Some(pod) = self.pods.get(pod_uid).cloned() else {
            return;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let view = OfferView {
            agent_id: agent_id.to_string(),
            hostname: node,
            ..Default::default()
        };
        self.track_launch(&pod, &view);
        if let (Some(l), Some(st)) = (
            self.launched.get_mut(pod_uid),
            pod.status.as_ref().and_then(|s| s.start_time.as_ref()),
        ) {
            l.start_time = st.0.to_string();
        }
    }

    /// Records a task update on its container: whether it changed anything, and whether it is
    /// the container's first TASK_RUNNING.
    fn apply_update(&mut self, pod_uid: &str, container: &str, status: &Json) -> Applied {
        let Some(c) = self
            .launched
            .get_mut(pod_uid)
            .and_then(|l| l.containers.iter_mut().find(|c| c.name == container))
        else {
            return Applied {
                changed: true,
                first_run: false,
            };
        };
        let before = c.clone();
        c.apply_status(status);
        let running = |c: &ContainerTask| c.state.as_deref() == Some("TASK_RUNNING");
        Applied {
            changed: *c != before,
            first_run: !running(&before) && running(c),
        }
    }

    /// Queues the pod's status as the tasks now tell it (superseding one not yet written).
    fn write_status(&mut self, pod_uid: &str) {
        let Some(l) = self.launched.get(pod_uid) else {
            return;
        };
        let status = pod_status(
            &l.containers,
            HOST_IP,
            &l.start_time,
            &now_rfc3339(),
            &l.node,
        );
        let job = patch_status_job(
            self.client.clone(),
            l.namespace.clone(),
            l.name.clone(),
            json!({ "status": status }),
        );
        self.writes.keyed(pod_uid.to_string(), job);
    }

    async fn kill_pod(&mut self, pod_uid: &str, grace: Option<i64>) {
        let Some(l) = self.launched.get_mut(pod_uid) else {
            return;
        };
        if l.killing {
            return;
        }
        l.killing = true;
        let agent = l.agent_id.clone();
        let live: Vec<String> = l
            .containers
            .iter()
            .filter(|c| !is_terminal(c))
            .map(|c| c.name.clone())
            .collect();
        let pod = self.pods.get(pod_uid).cloned();
        for c in live {
            let mut kill = json!({"task_id": {"value": super::tasks::task_id(pod_uid, &c)}, "agent_id": {"value": agent}});
            if let Some(g) = grace {
                kill["kill_policy"] =
                    json!({"grace_period": {"nanoseconds": g.max(0) as u64 * 1_000_000_000}});
            }
            self.call("KILL", kill).await;
            if let Some(p) = &pod {
                self.event(
                    p,
                    crate::events::EventType::Normal,
                    "Killing",
                    format!("Stopping container {c}"),
                );
            }
        }
    }

    /// A pod being deleted whose tasks are all terminal is removed for good (as the kubelet does,
    /// with grace 0 and a uid precondition).
    async fn finish_deletion(&mut self, pod_uid: &str) {
        let Some(l) = self.launched.get(pod_uid) else {
            return;
        };
        if !l.containers.iter().all(is_terminal) {
            return;
        }
        let pod = self.pods.get(pod_uid);
        let deleting = pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
        if !deleting {
            return;
        }
        let (ns, name) = (l.namespace.clone(), l.name.clone());
        if pod.is_some() {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(pod_uid.to_string()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            if let Err(err) = api.delete(&name, &dp).await {
                tracing::debug!(%err, pod = name, "cannot finish deleting pod");
                return;
            }
        }
        self.launched.remove(pod_uid);
    }

    async fn on_pod_event(&mut self, ev: Result<watcher::Event<Pod>, watcher::Error>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(err) => {
                tracing::debug!(%err, "pod watch error (retrying)");
                return;
            }
        };
        match ev {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                let key = uid(&pod);
                let new_pending = self.is_pending(&pod) && !self.pods.contains_key(&key);
                let deleting = pod.metadata.deletion_timestamp.is_some();
                let grace = pod.metadata.deletion_grace_period_seconds;
                self.pods.insert(key.clone(), pod);
                if new_pending {
                    // New demand: offers declined (and filtered) a moment ago may fit it now.
                    self.revive_soon().await;
                }
                if deleting {
                    self.kill_pod(&key, grace).await;
                    self.finish_deletion(&key).await;
                }
            }
            watcher::Event::Delete(pod) => {
                let key = uid(&pod);
                self.pods.remove(&key);
                self.unschedulable.remove(&key);
                self.kill_pod(&key, Some(0)).await;
                self.finish_deletion(&key).await;
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// REVIVE (clearing our filters) now, or within the next tick when one was just sent, so a
    /// burst of new pods costs one call.
    async fn revive_soon(&mut self) {
        if self
            .last_revive
            .is_none_or(|at| at.elapsed() >= REVIVE_EVERY)
        {
            self.last_revive = Some(Instant::now());
            self.revive_pending = false;
            self.suppressed = false;
            self.call("REVIVE", Json::Null).await;
        } else {
            self.revive_pending = true;
        }
    }

    async fn housekeeping(&mut self) {
        if self.revive_pending {
            self.revive_soon().await;
        }
        let any_pending = !self.pending().is_empty();
        if any_pending && self.suppressed {
            self.suppressed = false;
            self.call("REVIVE", Json::Null).await;
        } else if !any_pending && !self.suppressed && self.framework_id.is_some() {
            self.suppressed = true;
            self.call("SUPPRESS", Json::Null).await;
        }
        let deleting: Vec<(String, Option<i64>)> = self
            .pods
            .values()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_some() && self.launched.contains_key(&uid(p))
            })
            .map(|p| (uid(p), p.metadata.deletion_grace_period_seconds))
            .collect();
        for (key, grace) in deleting {
            self.kill_pod(&key, grace).await;
            self.finish_deletion(&key).await;
        }
    }
}

/// POSTs the pod's Binding to `node`, carrying `annotations` (copied onto the pod, as
/// kube-apiserver does). False when the binding failed (the pod is not launched).
fn bind_pod(
    client: kube::Client,
    pod: &Pod,
    node: String,
    annotations: Option<Json>,
) -> impl std::future::Future<Output = bool> + 'static {
    let (ns, name) = (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    let mut metadata = json!({"name": name, "namespace": ns});
    if let Some(a) = annotations {
        metadata["annotations"] = a;
    }
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": metadata,
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    async move {
        let api: Api<Pod> = Api::namespaced(client, &ns);
        match api
            .create_subresource::<_, Json>("binding", &name, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => true,
            Err(err) => {
                tracing::info!(%err, pod = name, "binding failed; the pod is not launched");
                false
            }
        }
    }
}

/// The host port given to each container port (what Endpoints publish), as the pod annotation
/// the binding carries; `None` without ports.
fn host_ports_annotation(demand: &Demand, host_ports: &[u16]) -> Option<Json> {
    if host_ports.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, Json> = demand
        .ports
        .iter()
        .zip(host_ports)
        .map(|(w, h)| (w.container_port.to_string(), json!(h)))
        .collect();
    Some(json!({ crate::endpoints::HOST_PORTS_ANNOTATION: Json::Object(map).to_string() }))
}

/// What a task update did to its container's record.
struct Applied {
    /// Anything changed (a re-sent update changes nothing).
    changed: bool,
    /// The container's first TASK_RUNNING.
    first_run: bool,
}

/// A merge patch of a pod's status, as a background job (failures are logged: the next update that
/// changes the pod's tasks writes the status again).
fn patch_status_job(client: kube::Client, ns: String, name: String, patch: Json) -> Job {
    job(move || async move {
        let api: Api<Pod> = Api::namespaced(client, &ns);
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(%err, pod = name, "cannot write pod status");
        }
    })
}

fn is_terminal(c: &ContainerTask) -> bool {
    c.state
        .as_deref()
        .and_then(TaskState::parse)
        .is_some_and(TaskState::is_terminal)
}

/// The matcher's view of an offer JSON.
fn offer_view(o: &Json) -> OfferView {
    let mut v = OfferView {
        id: o
            .pointer("/id/value")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        agent_id: o
            .pointer("/agent_id/value")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        hostname: o
            .get("hostname")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        ..Default::default()
    };
    v.labels
        .insert("kubernetes.io/hostname".into(), v.hostname.clone());
    for a in o
        .get("attributes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = a.get("name").and_then(Json::as_str) else {
            continue;
        };
        let value = a
            .pointer("/text/value")
            .and_then(Json::as_str)
            .map(str::to_string)
            .or_else(|| {
                a.pointer("/scalar/value")
                    .and_then(Json::as_f64)
                    .map(|f| f.to_string())
            });
        if let Some(value) = value {
            v.labels.insert(name.to_string(), value);
        }
    }
    let mut ports = BTreeSet::new();
    for r in o
        .get("resources")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        match r.get("name").and_then(Json::as_str) {
            Some("cpus") => {
                v.cpus += r
                    .pointer("/scalar/value")
                    .and_then(Json::as_f64)
                    .unwrap_or(0.0)
            }
            Some("mem") => {
                v.mem += r
                    .pointer("/scalar/value")
                    .and_then(Json::as_f64)
                    .unwrap_or(0.0)
            }
            Some("ports") => {
                ports.extend(offer_scheduler::resources::ports_of(&Json::Array(vec![
                    r.clone()
                ])));
            }
            _ => {}
        }
    }
    v.ports = ports;
    v
}
