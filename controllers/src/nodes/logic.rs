//! The node controller's decisions, free of I/O: a Node's labels and status from its agent, the Ready
//! condition's transitions, and when a lost node's pods are evicted.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::agents::{format_number, Agent};

/// Annotation holding the Mesos agent id of a Node this controller manages.
pub const AGENT_ID_ANNOTATION: &str = "kumos.io/agent-id";
/// `status.nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.0-kumos";
/// `status.nodeInfo.containerRuntimeVersion`.
pub const RUNTIME_VERSION: &str = "kumos://0.1.0";
/// `status.capacity.pods`.
pub const MAX_PODS: &str = "110";

/// How a node's readiness changed in one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Still the same.
    None,
    /// Ready became True.
    BecameReady,
    /// Ready stopped being True.
    BecameNotReady,
}

/// The Node name of an agent: its hostname, lowercased; None when that is no valid object name.
pub fn node_name(hostname: &str) -> Option<String> {
    let name = hostname.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(name)
}

/// One agent per Node name; when several agents share a hostname the active one wins.
pub fn agents_by_node(agents: &[Agent]) -> BTreeMap<String, &Agent> {
    let mut out: BTreeMap<String, &Agent> = BTreeMap::new();
    for a in agents {
        let Some(name) = node_name(&a.hostname) else {
            tracing::warn!(hostname = %a.hostname, "agent hostname is not a valid node name");
            continue;
        };
        match out.get(&name) {
            Some(prev) if prev.active || !a.active => {}
            _ => {
                out.insert(name, a);
            }
        }
    }
    out
}

fn valid_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    !name.is_empty()
        && valid_label_value(name)
        && prefix.is_none_or(|p| !p.is_empty() && node_name(p).as_deref() == Some(p))
}

/// The Node's labels: each valid agent attribute, then the standard hostname/os/arch labels.
pub fn node_labels(hostname: &str, agent: &Agent) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (k, v) in &agent.attributes {
        if valid_label_key(k) && valid_label_value(v) {
            labels.insert(k.clone(), v.clone());
        } else {
            tracing::debug!(attribute = %k, value = %v, "agent attribute is not a valid label");
        }
    }
    labels.insert("kubernetes.io/hostname".into(), hostname.into());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), "amd64".into());
    labels
}

/// A new Node for `agent` (metadata only; the status is written through `nodes/status`).
pub fn new_node(name: &str, agent: &Agent) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(node_labels(name, agent)),
            annotations: Some(BTreeMap::from([(
                AGENT_ID_ANNOTATION.to_string(),
                agent.id.clone(),
            )])),
            ..ObjectMeta::default()
        },
        ..Node::default()
    }
}

/// A merge patch bringing an existing Node's labels and agent-id annotation in line, or None when
/// they already are (other labels are left alone).
pub fn metadata_patch(node: &Node, agent: &Agent) -> Option<Value> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let want = node_labels(name, agent);
    let have = node.metadata.labels.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> = want
        .into_iter()
        .filter(|(k, v)| have.get(k) != Some(v))
        .collect();
    let id_ok = managed_agent_id(node) == Some(agent.id.as_str());
    if labels.is_empty() && id_ok {
        return None;
    }
    Some(serde_json::json!({"metadata": {
        "labels": labels,
        "annotations": {AGENT_ID_ANNOTATION: agent.id},
    }}))
}

/// The agent id of a Node this controller manages.
pub fn managed_agent_id(node: &Node) -> Option<&str> {
    node.metadata
        .annotations
        .as_ref()?
        .get(AGENT_ID_ANNOTATION)
        .map(String::as_str)
}

/// The Node's Ready condition, if any.
pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The Ready condition after this poll: True while the agent is active (heartbeat now), Unknown
/// otherwise (heartbeat kept: nobody heard from it). The transition time moves only on change.
pub fn next_ready(
    active: bool,
    previous: Option<&NodeCondition>,
    now: Timestamp,
) -> (NodeCondition, Transition) {
    let (status, reason, message) = if active {
        ("True", "KubeletReady", "kumos agent is active")
    } else {
        (
            "Unknown",
            "NodeStatusUnknown",
            "Kumos agent stopped posting status",
        )
    };
    let changed = previous.is_none_or(|p| p.status != status);
    let transition = match (changed, active) {
        (false, _) => Transition::None,
        (true, true) => Transition::BecameReady,
        // A node first seen without a live agent was never ready: nothing to announce.
        (true, false) if previous.is_none() => Transition::None,
        (true, false) => Transition::BecameNotReady,
    };
    let heartbeat = if active {
        Some(Time(now))
    } else {
        previous
            .and_then(|p| p.last_heartbeat_time.clone())
            .or(Some(Time(now)))
    };
    let transition_time = if changed {
        Some(Time(now))
    } else {
        previous
            .and_then(|p| p.last_transition_time.clone())
            .or(Some(Time(now)))
    };
    let cond = NodeCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: heartbeat,
        last_transition_time: transition_time,
    };
    (cond, transition)
}

/// `cpus` as a CPU quantity: `4`, or millicores for fractions (`2500m`).
pub fn cpu_quantity(cpus: f64) -> Quantity {
    if cpus.fract() == 0.0 {
        Quantity(format_number(cpus.max(0.0)))
    } else {
        Quantity(format!("{}m", (cpus.max(0.0) * 1000.0).round() as i64))
    }
}

/// Megabytes as a `<n>Mi` quantity.
pub fn mebibytes(mb: f64) -> Quantity {
    Quantity(format!("{}Mi", mb.max(0.0).floor() as i64))
}

/// The Node status for an agent the master knows (capacity from its resources).
pub fn agent_status(
    name: &str,
    agent: &Agent,
    previous: Option<&NodeCondition>,
    now: Timestamp,
) -> (NodeStatus, Transition) {
    let resources = BTreeMap::from([
        ("cpu".to_string(), cpu_quantity(agent.cpus)),
        ("memory".to_string(), mebibytes(agent.mem_mb)),
        ("ephemeral-storage".to_string(), mebibytes(agent.disk_mb)),
        ("pods".to_string(), Quantity(MAX_PODS.into())),
    ]);
    let (ready, transition) = next_ready(agent.active, previous, now);
    let status = NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: "127.0.0.1".into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.into(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            operating_system: "linux".into(),
            architecture: "amd64".into(),
            container_runtime_version: RUNTIME_VERSION.into(),
            ..NodeSystemInfo::default()
        }),
        conditions: Some(vec![ready]),
        ..NodeStatus::default()
    };
    (status, transition)
}

/// The Node status for a managed Node whose agent the master no longer lists: only Ready changes.
pub fn lost_status(node: &Node, now: Timestamp) -> (NodeStatus, Transition) {
    let (ready, transition) = next_ready(false, ready_condition(node), now);
    let status = NodeStatus {
        conditions: Some(vec![ready]),
        ..NodeStatus::default()
    };
    (status, transition)
}

/// Whether the Node's pods should be evicted: Ready has not been True for at least `timeout`.
pub fn should_evict(node: &Node, now: Timestamp, timeout: Duration) -> bool {
    let Some(ready) = ready_condition(node) else {
        return false;
    };
    if ready.status == "True" {
        return false;
    }
    let Some(since) = ready.last_transition_time.as_ref() else {
        return false;
    };
    let elapsed_ms = now
        .as_millisecond()
        .saturating_sub(since.0.as_millisecond());
    i128::from(elapsed_ms) >= i128::try_from(timeout.as_millis()).unwrap_or(i128::MAX)
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;

/// How often an unchanged Node status is written anyway, to refresh the Ready heartbeat (the
/// kubelet's `nodeStatusReportFrequency` is 5 minutes; liveness is ours to judge, not readers').
pub const STATUS_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Whether `wanted` must be written over the Node's current status: something besides the Ready
/// heartbeat differs, or the stored heartbeat is at least [`STATUS_REFRESH_EVERY`] old. With
/// thousands of agents, rewriting every status each poll would be most of the store's writes.
pub fn status_write_due(current: Option<&NodeStatus>, wanted: &NodeStatus, now: Timestamp) -> bool {
    let Some(current) = current else {
        return true;
    };
    let heartbeat = |s: &NodeStatus| {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .and_then(|c| c.last_heartbeat_time.clone())
    };
    let Some(Time(beat)) = heartbeat(current) else {
        return true;
    };
    let stale = now.duration_since(beat).as_secs_f64() >= STATUS_REFRESH_EVERY.as_secs_f64();
    let without_heartbeat = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
        }
        s
    };
    stale || without_heartbeat(current) != without_heartbeat(wanted)
}
