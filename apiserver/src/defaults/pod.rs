//! Pod and pod-template defaulting (`SetDefaults_PodSpec`, `SetDefaults_Container`, probes, volumes) plus the
//! Priority and DefaultTolerationSeconds admission defaults and the create-time status.

use super::{child, each, set_default};
use serde_json::{json, Map, Value};

/// Defaults a whole pod: its spec, admission-added fields and, when absent, the initial status.
pub(super) fn pod(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    pod_spec(spec);
    // SetDefaults_Pod: pod-only defaults (templates do not get these).
    set_default(spec, "enableServiceLinks", json!(true));
    let host_network = spec.get("hostNetwork") == Some(&json!(true));
    for key in ["containers", "initContainers"] {
        for c in each(spec, key) {
            requests_from_limits(c);
            if host_network {
                for port in each(c, "ports") {
                    if let Some(p) = port.get("containerPort").cloned() {
                        set_default(port, "hostPort", p);
                    }
                }
            }
        }
    }
    // The Priority admission plugin resolves the (absent) priority class to the global default.
    set_default(spec, "priority", json!(0));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default_tolerations(spec);
    let qos = qos_class(spec);
    if obj.get("status").is_none_or(Value::is_null) {
        obj.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos}),
        );
    }
}

/// Defaults a pod spec (shared by pods and pod templates).
pub(crate) fn pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["initContainers", "containers"] {
        for c in each(spec, key) {
            container(c);
        }
    }
    for volume in each(spec, "volumes") {
        volume_source(volume);
    }
}

fn container(c: &mut Map<String, Value>) {
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    set_default(c, "imagePullPolicy", json!(policy));
    // `resources` is a struct in Go, so it always serializes (as `{}` when empty).
    child(c, "resources");
    for port in each(c, "ports") {
        set_default(port, "protocol", json!("TCP"));
    }
    for env in each(c, "env") {
        if let Some(field_ref) = env
            .get_mut("valueFrom")
            .and_then(Value::as_object_mut)
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            set_default(field_ref, "apiVersion", json!("v1"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(http) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set_default(http, "path", json!("/"));
                set_default(http, "scheme", json!("HTTP"));
            }
        }
    }
}

/// SetDefaults_Pod: a container's requests default to its limits.
fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(resources) = child(c, "resources") else {
        return;
    };
    let limits = resources.get("limits").and_then(Value::as_object).cloned();
    // An empty requests map would be omitted on the wire, so only create it when there is something to copy.
    if let Some(limits) = limits.filter(|l| !l.is_empty()) {
        if let Some(requests) = child(resources, "requests") {
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        }
    }
}

/// The tag of an image reference: the part after `:` in the last path component (digest stripped);
/// `latest` when neither tag nor digest is given, `None` for digest-only references.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => Some(tag.to_string()),
        None if digest => None,
        None => Some("latest".to_string()),
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume_source(volume: &mut Map<String, Value>) {
    if !VOLUME_SOURCES
        .iter()
        .any(|k| volume.get(*k).is_some_and(|v| !v.is_null()))
    {
        volume.insert("emptyDir".into(), json!({}));
    }
    for key in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = volume.get_mut(key).and_then(Value::as_object_mut) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(host_path) = volume.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(host_path, "type", json!(""));
    }
    if let Some(projected) = volume.get_mut("projected").and_then(Value::as_object_mut) {
        for source in each(projected, "sources") {
            if let Some(token) = source
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_default(token, "expirationSeconds", json!(3600));
            }
        }
    }
}

/// DefaultTolerationSeconds: tolerate not-ready/unreachable nodes for 300s unless already tolerated.
fn default_tolerations(spec: &mut Map<String, Value>) {
    let existing = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerated = |key: &str| {
        existing.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or_default();
            let tkey = t.get("key").and_then(Value::as_str).unwrap_or_default();
            (effect.is_empty() || effect == "NoExecute") && (tkey.is_empty() || tkey == key)
        })
    };
    let mut added = Vec::new();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerated(key) {
            added.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 300}),
            );
        }
    }
    if added.is_empty() {
        return;
    }
    let slot = set_default(spec, "tolerations", json!([]));
    if let Some(list) = slot.as_array_mut() {
        list.extend(added);
    }
}

/// The pod's QoS class from its containers' cpu/memory requests and limits.
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let get = |kind: &str, res: &str| {
            c.pointer(&format!("/resources/{kind}/{res}"))
                .filter(|v| !v.is_null())
                .cloned()
        };
        for res in ["cpu", "memory"] {
            let (req, lim) = (get("requests", res), get("limits", res));
            any |= req.is_some() || lim.is_some();
            if lim.is_none() || req != lim {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(v: Value) -> Value {
        let mut v = v;
        if let Some(obj) = v.as_object_mut() {
            pod(obj);
        }
        v
    }

    #[test]
    fn pod_spec_and_container_defaults() {
        let p = defaulted(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "reg:5000/app:1.2"},
            {"name": "c", "image": "app:latest"},
            {"name": "d", "image": "app@sha256:abc"}]}}));
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
        let c = &spec["containers"];
        assert_eq!(c[0]["imagePullPolicy"], "Always");
        assert_eq!(c[1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[2]["imagePullPolicy"], "Always");
        assert_eq!(c[3]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c[0]["terminationMessagePolicy"], "File");
        assert_eq!(c[0]["resources"], json!({}));
        assert_eq!(c[0]["ports"][0]["protocol"], "TCP");
        assert!(c[0]["ports"][0].get("hostPort").is_none());
        assert_eq!(
            spec["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ])
        );
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn set_fields_are_kept() {
        let p = defaulted(json!({"spec": {"restartPolicy": "Never", "priority": 5,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "a", "image": "x", "imagePullPolicy": "Never",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}));
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["priority"], 5);
        assert_eq!(p["spec"]["tolerations"], json!([{"operator": "Exists"}]));
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn probes_volumes_and_host_network() {
        let p = defaulted(
            json!({"spec": {"hostNetwork": true, "volumes": [{"name": "v"},
            {"name": "s", "secret": {"secretName": "x"}}],
            "containers": [{"name": "a", "image": "x:1", "ports": [{"containerPort": 8080}],
                "livenessProbe": {"httpGet": {"port": 80}}}]}}),
        );
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["ports"][0]["hostPort"], 8080);
        assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/");
        assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(p["spec"]["volumes"][1]["secret"]["defaultMode"], 420);
    }
}
