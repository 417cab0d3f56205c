//! What a pending pod needs from an offer (pure): cpu, memory, host ports, and the node
//! constraints (nodeSelector, required node affinity) checked against an agent's labels.

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, Pod};
use std::collections::BTreeMap;

/// Requests assumed for a container that declares none (documented in the README): 0.1 cpu and
/// 64 MiB, so every pod holds something and offers are never packed with unbounded pods.
pub const DEFAULT_CPU: f64 = 0.1;
/// See [`DEFAULT_CPU`]: 64 MiB, in MB as Mesos counts memory.
pub const DEFAULT_MEM_MB: f64 = 64.0;

/// Parses a Kubernetes quantity ("100m", "0.5", "64Mi", "1G", "1e3") into base units.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some(n * mult).filter(|v| v.is_finite() && *v >= 0.0)
}

/// One container port the pod wants on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortWant {
    /// Container name.
    pub container: String,
    /// Port name, if any.
    pub name: Option<String>,
    /// The container port.
    pub container_port: u16,
    /// A fixed host port (`hostPort`), or `None` for "any port from the offer".
    pub host_port: Option<u16>,
}

/// A pod's demand.
#[derive(Clone, Debug, PartialEq)]
pub struct Demand {
    /// cpus per container, in container order.
    pub cpus: Vec<f64>,
    /// MB per container.
    pub mem: Vec<f64>,
    /// Ports wanted.
    pub ports: Vec<PortWant>,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// Required node-affinity terms (ORed; requirements inside a term ANDed).
    pub affinity: Vec<Vec<NodeSelectorRequirement>>,
}

impl Demand {
    /// Total cpus.
    pub fn total_cpus(&self) -> f64 {
        self.cpus.iter().sum()
    }

    /// Total memory (MB).
    pub fn total_mem(&self) -> f64 {
        self.mem.iter().sum()
    }

    /// Whether an agent with these labels satisfies the node constraints.
    pub fn fits_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        let selector_ok = self
            .node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        let affinity_ok = self.affinity.is_empty()
            || self
                .affinity
                .iter()
                .any(|term| term.iter().all(|r| requirement_matches(r, labels)));
        selector_ok && affinity_ok
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.clone().unwrap_or_default();
    let v = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => v.is_some_and(|v| values.contains(v)),
        "NotIn" => v.is_none_or(|v| !values.contains(v)),
        "Exists" => v.is_some(),
        "DoesNotExist" => v.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                v.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The demand of a pod.
pub fn demand(pod: &Pod) -> Demand {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut cpus = Vec::new();
    let mut mem = Vec::new();
    let mut ports = Vec::new();
    for c in &spec.containers {
        let res = c.resources.clone().unwrap_or_default();
        let pick = |name: &str| {
            res.requests
                .as_ref()
                .and_then(|r| r.get(name))
                .or_else(|| res.limits.as_ref().and_then(|l| l.get(name)))
                .and_then(|q| parse_quantity(&q.0))
        };
        cpus.push(pick("cpu").unwrap_or(DEFAULT_CPU));
        mem.push(pick("memory").map_or(DEFAULT_MEM_MB, |b| b / (1024.0 * 1024.0)));
        for p in c.ports.iter().flatten() {
            ports.push(PortWant {
                container: c.name.clone(),
                name: p.name.clone(),
                container_port: u16::try_from(p.container_port).unwrap_or(0),
                host_port: p
                    .host_port
                    .filter(|h| *h > 0)
                    .and_then(|h| u16::try_from(h).ok()),
            });
        }
    }
    let affinity = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .map(|s| {
            s.node_selector_terms
                .into_iter()
                .map(|t| t.match_expressions.unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    Demand {
        cpus,
        mem,
        ports,
        node_selector: spec.node_selector.unwrap_or_default(),
        affinity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("12x"), None);
        assert_eq!(parse_quantity("-1"), None);
    }

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn requests_limits_and_defaults() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1"}}},
                {"name": "c", "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090, "hostPort": 31001}]},
            ]}}),
        );
        let d = demand(&p);
        assert_eq!(d.cpus, vec![0.25, 1.0, DEFAULT_CPU]);
        assert_eq!(d.mem, vec![128.0, DEFAULT_MEM_MB, DEFAULT_MEM_MB]);
        assert_eq!(d.ports.len(), 2);
        assert_eq!(d.ports[0].host_port, None);
        assert_eq!(d.ports[1].host_port, Some(31001));
    }

    #[test]
    fn node_selector_and_affinity() {
        let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "nodeSelector": {"zone": "a"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "rack", "operator": "In", "values": ["r1", "r2"]}]},
                {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
            ]}}},
            "containers": [{"name": "a"}]}}));
        let d = demand(&p);
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(d.fits_labels(&labels(&[("zone", "a"), ("rack", "r2")])));
        assert!(d.fits_labels(&labels(&[("zone", "a"), ("gpu", "yes")])));
        assert!(!d.fits_labels(&labels(&[("zone", "b"), ("rack", "r1")])));
        assert!(!d.fits_labels(&labels(&[("zone", "a"), ("rack", "r3")])));
    }
}
