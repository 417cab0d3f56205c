//! The endpoints controller's decisions, free of I/O: which pods back a Service, on which ports, and
//! what to write.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Marks the Endpoints this controller writes, so it deletes only its own when the Service is gone.
pub const MANAGED_BY_ANNOTATION: &str = "endpoints.kumos.io/managed-by";
/// The value of [`MANAGED_BY_ANNOTATION`], and the component name of the controller's events.
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// Label Kubernetes sets on the Endpoints of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// What to do about one Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// They are as they should be (or not ours to touch).
    Nothing,
    /// Create these.
    Create(Endpoints),
    /// Replace the existing ones with these (the existing resourceVersion is carried over).
    Replace(Endpoints),
    /// Delete them: their Service is gone.
    Delete,
}

/// Decides what to do for the Service `svc` (None when it does not exist), given the existing Endpoints
/// of the same name and the pods of its namespace.
pub fn plan<'a>(
    svc: Option<&Service>,
    existing: Option<&Endpoints>,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Action {
    let Some(svc) = svc else {
        return match existing {
            Some(ep) if is_managed(ep) => Action::Delete,
            _ => Action::Nothing,
        };
    };
    let Some(mut desired) = desired_endpoints(svc, pods) else {
        return Action::Nothing;
    };
    match existing {
        None => Action::Create(desired),
        Some(ep)
            if is_managed(ep) && ep.subsets == desired.subsets && labels_equal(ep, &desired) =>
        {
            Action::Nothing
        }
        Some(ep) => {
            desired.metadata.resource_version = ep.metadata.resource_version.clone();
            Action::Replace(desired)
        }
    }
}

fn labels_equal(a: &Endpoints, b: &Endpoints) -> bool {
    let empty = BTreeMap::new();
    a.metadata.labels.as_ref().unwrap_or(&empty) == b.metadata.labels.as_ref().unwrap_or(&empty)
}

/// Whether this controller wrote `ep`.
pub fn is_managed(ep: &Endpoints) -> bool {
    ep.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANAGED_BY_ANNOTATION))
        .is_some_and(|v| v == CONTROLLER_NAME)
}

/// The selector of a Service that has one (an empty selector counts as none).
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether `svc` has a selector and it selects `pod` (same namespace, all selector labels present).
pub fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(selector) = service_selector(svc) else {
        return false;
    };
    if svc.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The Endpoints `svc` should have, or None when it has no selector (its Endpoints are left alone).
pub fn desired_endpoints<'a>(
    svc: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Option<Endpoints> {
    service_selector(svc)?;
    let spec = svc.spec.as_ref()?;
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_ports = spec.ports.as_deref().unwrap_or_default();
    // Pods are grouped by the ports they resolve to; pods on the same ports share a subset.
    let mut by_ports: Vec<(Vec<EndpointPort>, EndpointSubset)> = Vec::new();
    for pod in pods {
        if !selects(svc, pod) || !should_be_in_endpoints(pod) {
            continue;
        }
        let Some(address) = pod_address(pod) else {
            continue;
        };
        let ports: Vec<EndpointPort> = svc_ports
            .iter()
            .filter_map(|sp| endpoint_port(sp, pod))
            .collect();
        if ports.is_empty() && !svc_ports.is_empty() {
            continue;
        }
        let idx = match by_ports.iter().position(|(p, _)| *p == ports) {
            Some(i) => i,
            None => {
                let subset = EndpointSubset {
                    ports: (!ports.is_empty()).then(|| ports.clone()),
                    ..EndpointSubset::default()
                };
                by_ports.push((ports, subset));
                by_ports.len() - 1
            }
        };
        let subset = &mut by_ports[idx].1;
        let list = if publish_not_ready || is_ready(pod) {
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        list.get_or_insert_with(Vec::new).push(address);
    }
    let mut subsets: Vec<EndpointSubset> = by_ports.into_iter().map(|(_, s)| s).collect();
    for s in &mut subsets {
        for list in [&mut s.addresses, &mut s.not_ready_addresses]
            .into_iter()
            .flatten()
        {
            list.sort_by_cached_key(address_key);
        }
    }
    subsets.sort_by_cached_key(subset_key);

    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if spec.cluster_ip.as_deref() == Some("None") {
        labels.insert(HEADLESS_LABEL.to_string(), String::new());
    }
    Some(Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: Some(BTreeMap::from([(
                MANAGED_BY_ANNOTATION.to_string(),
                CONTROLLER_NAME.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

fn address_key(a: &EndpointAddress) -> (String, String, String) {
    let t = a.target_ref.as_ref();
    (
        a.ip.clone(),
        t.and_then(|t| t.name.clone()).unwrap_or_default(),
        t.and_then(|t| t.uid.clone()).unwrap_or_default(),
    )
}

fn subset_key(s: &EndpointSubset) -> (Vec<i32>, Vec<(String, String, String)>) {
    let ports = s.ports.iter().flatten().map(|p| p.port).collect();
    let addrs = s
        .addresses
        .iter()
        .chain(s.not_ready_addresses.iter())
        .flatten()
        .map(address_key)
        .collect();
    (ports, addrs)
}

/// Running, not terminating pods belong in Endpoints (`ShouldPodBeInEndpoints`).
pub fn should_be_in_endpoints(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| status.pod_ips.as_ref()?.first().map(|p| p.ip.clone()))
        .filter(|ip| !ip.is_empty())
}

/// The address of a pod with an IP, pointing back at the pod.
pub fn pod_address(pod: &Pod) -> Option<EndpointAddress> {
    let ip = pod_ip(pod)?;
    Some(EndpointAddress {
        ip,
        hostname: None,
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_string()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    })
}

/// Annotation in which the Kubernetes framework records the host port it gave each container port
/// without a `hostPort` (`{"8080": 31002}`).
pub const HOST_PORTS_ANNOTATION: &str = "kumos.io/host-ports";

/// The host port the framework assigned to `container_port` of `pod`, if any.
fn assigned_host_port(pod: &Pod, container_port: i32) -> Option<i32> {
    let text = pod
        .metadata
        .annotations
        .as_ref()?
        .get(HOST_PORTS_ANNOTATION)?;
    let map: serde_json::Value = serde_json::from_str(text).ok()?;
    let port = map.get(container_port.to_string())?.as_i64()?;
    i32::try_from(port).ok().filter(|p| *p > 0)
}

/// The endpoint port of service port `sp` on `pod`: the target port (a number, or a container port
/// name), replaced by the container port's hostPort when it has one, or by the host port the
/// framework assigned to it ([`HOST_PORTS_ANNOTATION`]). None when a name does not resolve.
pub fn endpoint_port(sp: &ServicePort, pod: &Pod) -> Option<EndpointPort> {
    let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".to_string());
    let container_ports = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten());
    let same_protocol = |p: &&k8s_openapi::api::core::v1::ContainerPort| {
        p.protocol.as_deref().unwrap_or("TCP") == protocol
    };
    let (number, container_port) = match &sp.target_port {
        Some(IntOrString::String(name)) => {
            let cp = container_ports
                .filter(same_protocol)
                .find(|p| p.name.as_deref() == Some(name.as_str()))?;
            (cp.container_port, Some(cp))
        }
        Some(IntOrString::Int(n)) => {
            let cp = container_ports
                .filter(same_protocol)
                .find(|p| p.container_port == *n);
            (*n, cp)
        }
        None => {
            let cp = container_ports
                .filter(same_protocol)
                .find(|p| p.container_port == sp.port);
            (sp.port, cp)
        }
    };
    let port = container_port
        .and_then(|cp| cp.host_port)
        .filter(|hp| *hp > 0)
        .or_else(|| assigned_host_port(pod, number))
        .unwrap_or(number);
    Some(EndpointPort {
        name: sp.name.clone(),
        port,
        protocol: Some(protocol),
        app_protocol: sp.app_protocol.clone(),
    })
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;
