//! The registry strategies' `PrepareForCreate` (reset what clients may not set) and `PrepareForUpdate` (carry
//! over what a client's PUT may omit but the server owns — status, allocated service IPs and node ports,
//! namespace finalizers).

use crate::resources::ResourceInfo;
use serde_json::{json, Map, Value};

/// Resets server-owned fields on create, as the real strategies do: a client cannot create a pod that is
/// already running. Call after [`super::apply`] (which fills the defaults this relies on).
pub fn prepare_create(resource: &ResourceInfo, object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    match resource.name {
        "pods" => {
            obj.remove("status");
            super::apply(resource, object);
        }
        "replicationcontrollers" => {
            obj.insert("status".into(), json!({"replicas": 0}));
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("generation".into(), json!(1));
            }
        }
        "services" => {
            obj.insert("status".into(), json!({"loadBalancer": {}}));
        }
        "namespaces" => {
            obj.insert("status".into(), json!({"phase": "Active"}));
            // The kubernetes finalizer is required on create (it may be removed later via `finalize`).
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                let list = spec.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    if !list.iter().any(|f| f == "kubernetes") {
                        list.push(json!("kubernetes"));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Prepares `new` for validation against the stored `old`, as kube-apiserver's strategies do on update
/// (main resource, not the `status` subresource): status is kept from `old`, and values the server allocated
/// are restored when the client left them out. Call after [`super::apply`].
pub fn prepare_update(resource: &ResourceInfo, new: &mut Value, old: &Value) {
    let (Some(new_obj), Some(old_obj)) = (new.as_object_mut(), old.as_object()) else {
        return;
    };
    match resource.name {
        "pods" | "replicationcontrollers" | "namespaces" | "nodes" | "services" => {
            keep(new_obj, old_obj, "status");
        }
        _ => {}
    }
    match resource.name {
        "namespaces" => {
            // Namespace finalizers change only through the `finalize` subresource.
            if let (Some(spec), Some(old_spec)) = (
                new_obj.get_mut("spec").and_then(Value::as_object_mut),
                old_obj.get("spec").and_then(Value::as_object),
            ) {
                keep(spec, old_spec, "finalizers");
            } else if let Some(old_spec) = old_obj.get("spec") {
                new_obj.insert("spec".into(), old_spec.clone());
            }
        }
        "services" => service(new_obj, old_obj),
        _ => {}
    }
}

/// `new[key] = old[key]` (removing it when `old` has none).
fn keep(new: &mut Map<String, Value>, old: &Map<String, Value>, key: &str) {
    match old.get(key) {
        Some(v) => {
            new.insert(key.to_string(), v.clone());
        }
        None => {
            new.remove(key);
        }
    }
}

fn str_of<'a>(spec: &'a Value, key: &str) -> &'a str {
    spec.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn needs_node_port(spec: &Value) -> bool {
    match str_of(spec, "type") {
        "NodePort" => true,
        "LoadBalancer" => spec.get("allocateLoadBalancerNodePorts") != Some(&Value::Bool(false)),
        _ => false,
    }
}

/// `dropTypeDependentFields`: a type change wipes what the old type needed and the new one cannot have
/// (cluster IPs, node ports, health-check port, traffic policy...), unless the client changed it too (then
/// validation judges it). The allocator releases what was wiped once the update is stored.
fn drop_type_dependent_fields(spec: &mut Map<String, Value>, old_spec: &Value) {
    let spec_value = Value::Object(spec.clone());
    let same = |key: &str| spec.get(key) == old_spec.get(key);
    let needs_ip = |s: &Value| str_of(s, "type") != "ExternalName";
    let mut drop = Vec::new();
    if needs_ip(old_spec) && !needs_ip(&spec_value) {
        if same("clusterIP") && same("clusterIPs") {
            drop.extend(["clusterIP", "clusterIPs"]);
        }
        for key in ["ipFamilies", "ipFamilyPolicy"] {
            if same(key) {
                drop.push(key);
            }
        }
    }
    let exposes = |s: &Value| matches!(str_of(s, "type"), "NodePort" | "LoadBalancer");
    let same_node_ports = {
        let node_ports = |s: &Value| -> Vec<i64> {
            s.get("ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
                        .collect()
                })
                .unwrap_or_default()
        };
        node_ports(&spec_value) == node_ports(old_spec)
    };
    let wipe_node_ports = exposes(old_spec) && !exposes(&spec_value) && same_node_ports;
    let needs_hc = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if needs_hc(old_spec) && !needs_hc(&spec_value) && same("healthCheckNodePort") {
        drop.push("healthCheckNodePort");
    }
    let old_lb = str_of(old_spec, "type") == "LoadBalancer";
    if old_lb && str_of(&spec_value, "type") != "LoadBalancer" {
        if same("allocateLoadBalancerNodePorts") {
            drop.push("allocateLoadBalancerNodePorts");
        }
        if same("loadBalancerClass") {
            drop.push("loadBalancerClass");
        }
    }
    let etp_allowed = |s: &Value| {
        exposes(s)
            || s.get("externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
    };
    if etp_allowed(old_spec) && !etp_allowed(&spec_value) && same("externalTrafficPolicy") {
        drop.push("externalTrafficPolicy");
    }
    if str_of(&spec_value, "type") == "ExternalName" {
        drop.push("internalTrafficPolicy");
    }
    for key in drop {
        spec.remove(key);
    }
    if wipe_node_ports {
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
    }
}

/// `patchAllocatedValues` (restore cluster IPs, node ports and the health-check port the client omitted),
/// then `dropTypeDependentFields`.
fn service(new: &mut Map<String, Value>, old: &Map<String, Value>) {
    let Some(old_spec) = old.get("spec") else {
        return;
    };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    patch_allocated_values(spec, old_spec);
    drop_type_dependent_fields(spec, old_spec);
}

fn patch_allocated_values(spec: &mut Map<String, Value>, old_spec: &Value) {
    let new_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if str_of(old_spec, "type") != "ExternalName" && new_type != "ExternalName" {
        let ip_missing = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if ip_missing {
            if let Some(ip) = old_spec.get("clusterIP").filter(|v| v.is_string()) {
                spec.insert("clusterIP".into(), ip.clone());
            }
        }
        let no_ips = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_ips {
            if let Some(ips) = old_spec
                .get("clusterIPs")
                .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                spec.insert("clusterIPs".into(), ips.clone());
            }
        }
    }
    let spec_value = Value::Object(spec.clone());
    if needs_node_port(old_spec) && needs_node_port(&spec_value) {
        let node_port = |p: &Value| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        let ports_of = |s: &Value| -> Vec<Value> {
            s.get("ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let old_ports = ports_of(old_spec);
        let new_ports = ports_of(&spec_value);
        let used: Vec<i64> = new_ports
            .iter()
            .map(node_port)
            .filter(|n| *n != 0 && old_ports.iter().any(|o| node_port(o) == *n))
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for port in ports.iter_mut().filter(|p| node_port(p) == 0) {
                let name = str_of(port, "name").to_string();
                let previous = old_ports
                    .iter()
                    .find(|o| str_of(o, "name") == name)
                    .map(node_port)
                    .unwrap_or(0);
                if previous != 0 && !used.contains(&previous) {
                    if let Some(p) = port.as_object_mut() {
                        p.insert("nodePort".into(), Value::from(previous));
                    }
                }
            }
        }
    }
    let needs_hc = |s: &Value| {
        str_of(s, "type") == "LoadBalancer" && str_of(s, "externalTrafficPolicy") == "Local"
    };
    if needs_hc(old_spec) && needs_hc(&spec_value) {
        let missing = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0;
        if let Some(hc) = old_spec.get("healthCheckNodePort").filter(|_| missing) {
            spec.insert("healthCheckNodePort".into(), hc.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    fn prepared(resource: &str, mut new: Value, old: Value) -> Value {
        prepare_update(by_name(resource).unwrap(), &mut new, &old);
        new
    }

    #[test]
    fn create_resets_server_owned_fields() {
        let pods = by_name("pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"}});
        prepare_create(pods, &mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        let mut rc = json!({"metadata": {"name": "r", "generation": 7}, "spec": {}, "status": {"replicas": 3}});
        prepare_create(by_name("replicationcontrollers").unwrap(), &mut rc);
        assert_eq!(rc["status"], json!({"replicas": 0}));
        assert_eq!(rc["metadata"]["generation"], 1);
        let mut ns = json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["example.com/x"]}});
        prepare_create(by_name("namespaces").unwrap(), &mut ns);
        assert_eq!(
            ns["spec"]["finalizers"],
            json!(["example.com/x", "kubernetes"])
        );
        assert_eq!(ns["status"]["phase"], "Active");
    }

    #[test]
    fn status_is_kept_from_the_stored_object() {
        let pod = prepared(
            "pods",
            json!({"spec": {}, "status": {"phase": "Failed"}}),
            json!({"status": {"phase": "Running"}}),
        );
        assert_eq!(pod["status"]["phase"], "Running");
        let cm = prepared(
            "configmaps",
            json!({"data": {"a": "1"}}),
            json!({"data": {}}),
        );
        assert_eq!(cm["data"]["a"], "1");
    }

    #[test]
    fn service_allocations_survive_a_put_without_them() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}});
        let svc = prepared(
            "services",
            json!({"spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}}),
            old,
        );
        assert_eq!(svc["spec"]["clusterIP"], "10.0.0.5");
        assert_eq!(svc["spec"]["clusterIPs"], json!(["10.0.0.5"]));
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn a_type_change_drops_what_the_old_type_needed() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.5", "clusterIPs": ["10.0.0.5"],
            "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut to_cluster_ip = old.clone();
        to_cluster_ip["spec"]["type"] = json!("ClusterIP");
        let svc = prepared("services", to_cluster_ip, old.clone());
        assert_eq!(svc["spec"]["ports"][0].get("nodePort"), None);
        assert_eq!(svc["spec"].get("externalTrafficPolicy"), None);
        assert_eq!(svc["spec"]["clusterIP"], "10.0.0.5");
        let svc = prepared(
            "services",
            json!({"spec": {"type": "ExternalName", "externalName": "a.b"}}),
            old.clone(),
        );
        assert_eq!(svc["spec"].get("clusterIP"), None);
        assert_eq!(svc["spec"].get("ipFamilies"), None);
        // A node port the client changed is left for validation to refuse.
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30081);
        let svc = prepared("services", changed, old);
        assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30081);
    }

    #[test]
    fn namespace_finalizers_are_kept() {
        let ns = prepared(
            "namespaces",
            json!({"spec": {"finalizers": []}}),
            json!({"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
    }
}
