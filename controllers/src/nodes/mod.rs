//! The node controller: one Node per Mesos agent, kept from the master's operator API (`GET_AGENTS`,
//! polled every few seconds). Nodes of active agents are Ready; those of disconnected or vanished
//! agents turn Unknown, and once they have been so for the eviction timeout their pods are deleted so
//! their controllers replace them elsewhere.

pub mod agents;
mod logic;

pub use agents::{parse_agents, Agent, MasterClient, MasterError};
pub use logic::{
    agent_status, lost_status, node_labels, should_evict, Transition, AGENT_ID_ANNOTATION,
    KUBELET_VERSION, RUNTIME_VERSION,
};

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, NodeStatus, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tokio::time::MissedTickBehavior;

use crate::events::{EventType, Recorder};
use crate::Context;

/// Nodes synced at once in one poll.
const SYNC_PARALLEL: usize = 16;

/// The component name of the node controller's events.
pub const COMPONENT: &str = "node-controller";

/// Settings of the node controller.
#[derive(Debug, Clone)]
pub struct NodesConfig {
    /// The master (`http://127.0.0.1:5050`).
    pub master_url: String,
    /// How often the master is asked for its agents.
    pub poll_interval: Duration,
    /// How long a Node may be not Ready before its pods are deleted.
    pub eviction_timeout: Duration,
}

impl NodesConfig {
    /// Polls `master_url` every 5 seconds and evicts after 5 minutes.
    pub fn new(master_url: &str) -> NodesConfig {
        NodesConfig {
            master_url: master_url.to_string(),
            poll_interval: Duration::from_secs(5),
            eviction_timeout: Duration::from_secs(300),
        }
    }
}

/// One poll failed.
#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    /// The master could not be asked.
    #[error(transparent)]
    Master(#[from] MasterError),
    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> NodesError {
    let what = what.into();
    move |source| NodesError::Api { what, source }
}

/// Runs the node controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context, config: NodesConfig) {
    let master = match MasterClient::new(&config.master_url) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "node controller cannot start");
            return;
        }
    };
    let recorder = Recorder::new(ctx.client.clone(), COMPONENT);
    let mut tick = tokio::time::interval(config.poll_interval.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let poll = poll_once(&ctx.client, &master, &recorder, config.eviction_timeout);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            result = poll => if let Err(e) = result {
                tracing::warn!(error = %e, "node controller poll");
            }
        }
    }
}

/// One round: read the agents, bring every Node in line, evict pods of Nodes lost for too long.
/// When the master cannot be reached nothing changes (its agents are not known to be gone).
pub async fn poll_once(
    client: &Client,
    master: &MasterClient,
    recorder: &Recorder,
    eviction_timeout: Duration,
) -> Result<(), NodesError> {
    let agents = master.get_agents().await?;
    let api: Api<Node> = Api::all(client.clone());
    let nodes: BTreeMap<String, Node> = api
        .list(&ListParams::default())
        .await
        .map_err(api_err("listing nodes"))?
        .items
        .into_iter()
        .map(|n| (n.name_any(), n))
        .collect();
    let by_node = logic::agents_by_node(&agents);
    let mut first_error = None;
    let mut updated = Vec::new();
    // Owned inputs: the futures must be 'static-friendly to stay Send inside a spawned task.
    let work: Vec<(String, Agent, Option<Node>)> = by_node
        .iter()
        .map(|(name, agent)| (name.clone(), (*agent).clone(), nodes.get(name).cloned()))
        .collect();
    let synced: Vec<_> = futures::stream::iter(work)
        .map(|(name, agent, existing)| {
            let (api, recorder) = (api.clone(), recorder.clone());
            async move {
                let r = sync_agent(&api, &recorder, &name, &agent, existing.as_ref()).await;
                (name, r)
            }
        })
        .buffer_unordered(SYNC_PARALLEL)
        .collect()
        .await;
    for (name, result) in synced {
        match result {
            Ok(node) => updated.push(node),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "syncing node");
                first_error.get_or_insert(e);
            }
        }
    }
    for (name, node) in &nodes {
        if by_node.contains_key(name) || logic::managed_agent_id(node).is_none() {
            continue;
        }
        let (status, transition) = lost_status(node, Timestamp::now());
        match write_status(&api, recorder, name, status, transition).await {
            Ok(node) => updated.push(node),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "marking node lost");
                first_error.get_or_insert(e);
            }
        }
    }
    for node in &updated {
        if should_evict(node, Timestamp::now(), eviction_timeout) {
            if let Err(e) = evict_pods(client, recorder, node).await {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Creates or updates one agent's Node and writes its status; returns the Node as written.
async fn sync_agent(
    api: &Api<Node>,
    recorder: &Recorder,
    name: &str,
    agent: &Agent,
    existing: Option<&Node>,
) -> Result<Node, NodesError> {
    let previous = match existing {
        None => {
            let created = api
                .create(&PostParams::default(), &logic::new_node(name, agent))
                .await
                .map_err(api_err(format!("creating node {name}")))?;
            recorder
                .publish(
                    &created,
                    EventType::Normal,
                    "RegisteredNode",
                    &format!("Node {name} event: Registered Node {name} in Controller"),
                )
                .await;
            None
        }
        Some(node) => {
            if let Some(patch) = logic::metadata_patch(node, agent) {
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(api_err(format!("updating node {name} labels")))?;
            }
            logic::ready_condition(node).cloned()
        }
    };
    let now = Timestamp::now();
    let (status, transition) = agent_status(name, agent, previous.as_ref(), now);
    if let Some(node) = existing {
        if !logic::status_write_due(node.status.as_ref(), &status, now) {
            return Ok(node.clone());
        }
    }
    write_status(api, recorder, name, status, transition).await
}

/// Merge-patches `status` through `nodes/status` and announces readiness changes.
async fn write_status(
    api: &Api<Node>,
    recorder: &Recorder,
    name: &str,
    status: NodeStatus,
    transition: Transition,
) -> Result<Node, NodesError> {
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    let node = api
        .patch_status(name, &PatchParams::default(), &patch)
        .await
        .map_err(api_err(format!("writing node {name} status")))?;
    let reason = match transition {
        Transition::None => return Ok(node),
        Transition::BecameReady => "NodeReady",
        Transition::BecameNotReady => "NodeNotReady",
    };
    recorder
        .publish(
            &node,
            EventType::Normal,
            reason,
            &format!("Node {name} status is now: {reason}"),
        )
        .await;
    Ok(node)
}

/// Deletes the pods bound to a lost Node, at once: no agent is left to stop them gracefully.
async fn evict_pods(client: &Client, recorder: &Recorder, node: &Node) -> Result<(), NodesError> {
    let name = node.name_any();
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={name}")))
        .await
        .map_err(api_err(format!("listing pods of node {name}")))?;
    for pod in on_node.items {
        let (Some(namespace), pod_name) = (pod.namespace(), pod.name_any()) else {
            continue;
        };
        tracing::info!(node = %name, pod = %pod_name, %namespace, "evicting pod of a lost node");
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        match api
            .delete(&pod_name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => {
                recorder
                    .publish(
                        node,
                        EventType::Normal,
                        "NodeControllerEviction",
                        &format!("Marking for deletion Pod {pod_name} from Node {name}"),
                    )
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(api_err(format!("deleting pod {namespace}/{pod_name}"))(e));
            }
        }
    }
    Ok(())
}
