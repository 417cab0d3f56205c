//! Defaulting of core/v1 objects, as kube-apiserver applies it before validation. Pure.
//!
//! Covers the generated `SetDefaults_*` functions plus the create-time values the real server's strategies and
//! default admission plugins add (pod priority, default tolerations, namespace finalizers), since clients see
//! them all the same. Fields already set are never touched.

mod pod;
mod update;

pub use update::{prepare_create, prepare_update};

use crate::resources::ResourceInfo;
use serde_json::{json, Map, Value};

/// Fills defaults into `object` (e.g. pod `restartPolicy: Always`, container `imagePullPolicy`,
/// service `type: ClusterIP`, rc `replicas: 1`, namespace `spec.finalizers: [kubernetes]`).
/// Non-object input is left alone (validation reports it).
pub fn apply(resource: &ResourceInfo, object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    match resource.name {
        "pods" => pod::pod(obj),
        "replicationcontrollers" => replication_controller(obj),
        "services" => service(obj),
        "namespaces" => namespace(obj),
        "endpoints" => endpoints(obj),
        "nodes" => node(obj),
        "secrets" => {
            set_default(obj, "type", json!("Opaque"));
        }
        _ => {}
    }
}

/// Sets `obj[key] = value` when the key is absent or null; returns the (possibly existing) value.
pub(crate) fn set_default<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    value: Value,
) -> &'a mut Value {
    let slot = obj.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value;
    }
    slot
}

/// The object at `obj[key]`, created as `{}` when absent or null; `None` when it holds a non-object.
pub(crate) fn child<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    set_default(obj, key, json!({})).as_object_mut()
}

/// Each object element of the array at `obj[key]`, if there is one.
pub(crate) fn each<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Whether `obj[key]` is absent, null, or an empty object/array/string.
fn is_empty(obj: &Map<String, Value>, key: &str) -> bool {
    match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

fn replication_controller(obj: &mut Map<String, Value>) {
    // The status struct always serializes its replica count.
    if let Some(status) = child(obj, "status") {
        set_default(status, "replicas", json!(0));
    }
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = child(obj, "spec") {
            if is_empty(spec, "selector") {
                spec.insert("selector".into(), labels.clone());
            }
        }
        if let Some(meta) = child(obj, "metadata") {
            if is_empty(meta, "labels") {
                meta.insert("labels".into(), labels);
            }
        }
    }
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if let Some(template_spec) = spec
        .get_mut("template")
        .and_then(Value::as_object_mut)
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        pod::pod_spec(template_spec);
    }
}

fn service(obj: &mut Map<String, Value>) {
    // The status struct always serializes its (empty) load balancer.
    if let Some(status) = child(obj, "status") {
        set_default(status, "loadBalancer", json!({}));
    }
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    let ty = set_default(spec, "type", json!("ClusterIP"))
        .as_str()
        .unwrap_or_default()
        .to_string();
    let affinity = set_default(spec, "sessionAffinity", json!("None"))
        .as_str()
        .unwrap_or_default()
        .to_string();
    if affinity == "None" {
        spec.remove("sessionAffinityConfig");
    }
    if affinity == "ClientIP"
        && spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
            .is_none_or(Value::is_null)
    {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    for port in each(spec, "ports") {
        set_default(port, "protocol", json!("TCP"));
        let target_missing = matches!(port.get("targetPort"), None | Some(Value::Null))
            || port.get("targetPort") == Some(&json!(0))
            || port.get("targetPort") == Some(&json!(""));
        if target_missing {
            if let Some(p) = port.get("port").cloned() {
                port.insert("targetPort".into(), p);
            }
        }
    }
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if ty == "NodePort" || ty == "LoadBalancer" || (ty == "ClusterIP" && has_external_ips) {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        if is_empty(spec, "ipFamilies") {
            spec.insert("ipFamilies".into(), json!(["IPv4"]));
        }
        // The strategy keeps clusterIP and clusterIPs in sync, whichever the client set.
        let first = spec
            .get("clusterIPs")
            .and_then(|ips| ips.get(0))
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(first) = first.filter(|_| is_empty(spec, "clusterIP")) {
            spec.insert("clusterIP".into(), json!(first));
        }
        let ip = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ip.is_empty() && is_empty(spec, "clusterIPs") {
            let ips = json!([ip]);
            spec.insert("clusterIPs".into(), ips);
        }
    }
}

fn namespace(obj: &mut Map<String, Value>) {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(name), Some(meta)) = (name, child(obj, "metadata")) {
        if let Some(labels) = child(meta, "labels") {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = child(obj, "spec") {
        if is_empty(spec, "finalizers") {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
    }
    if let Some(status) = child(obj, "status") {
        set_default(status, "phase", json!("Active"));
    }
}

fn endpoints(obj: &mut Map<String, Value>) {
    for subset in each(obj, "subsets") {
        for port in each(subset, "ports") {
            set_default(port, "protocol", json!("TCP"));
        }
    }
}

fn node(obj: &mut Map<String, Value>) {
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if is_empty(status, "allocatable") {
        if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status.insert("allocatable".into(), capacity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;

    fn defaulted(resource: &str, mut v: Value) -> Value {
        apply(by_name(resource).unwrap(), &mut v);
        v
    }

    #[test]
    fn rc_defaults_selector_labels_and_replicas() {
        let rc = defaulted(
            "replicationcontrollers",
            json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        );
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        let c = &rc["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(rc["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(rc["spec"]["template"]["spec"]
            .get("enableServiceLinks")
            .is_none());
        assert!(rc["spec"]["template"]["spec"].get("tolerations").is_none());
        let kept = defaulted(
            "replicationcontrollers",
            json!({"metadata": {"labels": {"a": "b"}}, "spec": {"replicas": 0, "selector": {"s": "t"},
                "template": {"metadata": {"labels": {"s": "t"}}}}}),
        );
        assert_eq!(kept["spec"]["replicas"], 0);
        assert_eq!(kept["spec"]["selector"], json!({"s": "t"}));
        assert_eq!(kept["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            "services",
            json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "dns");
        assert_eq!(spec["ports"][1]["protocol"], "UDP");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        let np = defaulted(
            "services",
            json!({"spec": {"type": "NodePort", "clusterIP": "10.0.0.9"}}),
        );
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["clusterIPs"], json!(["10.0.0.9"]));
        let affinity = defaulted("services", json!({"spec": {"sessionAffinity": "ClientIP"}}));
        assert_eq!(
            affinity["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
        let none = defaulted("services", json!({"spec": {"sessionAffinityConfig": {}}}));
        assert!(none["spec"].get("sessionAffinityConfig").is_none());
        let ext = defaulted("services", json!({"spec": {"type": "ExternalName"}}));
        assert!(ext["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn namespace_defaults() {
        let ns = defaulted("namespaces", json!({"metadata": {"name": "dev"}}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "dev"
        );
    }

    #[test]
    fn non_objects_are_left_alone() {
        assert_eq!(defaulted("pods", json!("x")), json!("x"));
        let odd = defaulted("services", json!({"spec": 5}));
        assert_eq!(
            odd["spec"], 5,
            "a malformed spec is left for validation to report"
        );
    }
}
