//! Per-resource Table cells, following kube's `printers.go` with wide output on (the server always sends
//! every column; kubectl hides priority-1 columns unless `-o wide`).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{array_at, format_labels, int_at, parse_time, since, str_at};

/// The cells of one row plus the optional row conditions (pods that completed).
pub(super) struct Printed {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Printed {
    fn from(cells: Vec<Value>) -> Self {
        Printed {
            cells,
            conditions: None,
        }
    }
}

/// Prints one object of `resource`.
pub(super) fn print(resource: &str, obj: &Value, now: OffsetDateTime) -> Printed {
    let name = json!(str_at(obj, "/metadata/name"));
    let age = json!(since(obj.pointer("/metadata/creationTimestamp"), now));
    match resource {
        "pods" => super::pod::pod(obj, now),
        "replicationcontrollers" => replication_controller(obj, name, age).into(),
        "services" => service(obj, name, age).into(),
        "endpoints" => vec![name, json!(format_endpoints(obj)), age].into(),
        "namespaces" => vec![name, json!(str_at(obj, "/status/phase")), age].into(),
        "nodes" => node(obj, name, age).into(),
        "events" => event(obj, now).into(),
        "configmaps" => {
            let count = |p: &str| {
                obj.pointer(p)
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            };
            vec![name, json!(count("/data") + count("/binaryData")), age].into()
        }
        _ => vec![name, age].into(),
    }
}

/// kube's `layoutContainerCells`: comma-joined container names and images.
fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn replication_controller(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    vec![
        name,
        json!(int_at(obj, "/spec/replicas")),
        json!(int_at(obj, "/status/replicas")),
        json!(int_at(obj, "/status/readyReplicas")),
        age,
        json!(names),
        json!(images),
        json!(format_labels(obj.pointer("/spec/selector"))),
    ]
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().filter_map(Value::as_str).collect()
}

/// kube's `getServiceExternalIP` in wide mode (no truncation of load-balancer addresses).
fn service_external_ip(obj: &Value) -> String {
    let external = strings(array_at(obj, "/spec/externalIPs"));
    match str_at(obj, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut lb: Vec<&str> = array_at(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| match (str_at(i, "/ip"), str_at(i, "/hostname")) {
                    ("", "") => None,
                    ("", host) => Some(host),
                    (ip, _) => Some(ip),
                })
                .collect();
            lb.sort_unstable();
            lb.dedup();
            let mut all = lb;
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn service(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let cluster_ip = strings(array_at(obj, "/spec/clusterIPs"))
        .first()
        .map_or("<none>".to_string(), |s| s.to_string());
    let ports: Vec<String> = array_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let proto = str_at(p, "/protocol");
            match int_at(p, "/nodePort") {
                np if np > 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        name,
        json!(str_at(obj, "/spec/type")),
        json!(cluster_ip),
        json!(service_external_ip(obj)),
        json!(ports),
        age,
        json!(format_labels(obj.pointer("/spec/selector"))),
    ]
}

/// kube's `formatEndpoints`: up to three `ip:port` entries, then `+ N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = array_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = array_at(ss, "/addresses");
        let ports = array_at(ss, "/ports");
        let mut emit = |port: Option<i64>| {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                list.push(match port {
                    // Go's net.JoinHostPort brackets IPv6 addresses.
                    Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                    Some(p) => format!("{ip}:{p}"),
                    None => ip.to_string(),
                });
            }
        };
        if ports.is_empty() {
            emit(None);
        } else {
            for p in ports {
                emit(Some(int_at(p, "/port")));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

fn node(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let conditions = array_at(obj, "/status/conditions");
    let mut status: Vec<String> = match conditions.iter().rev().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => vec!["Ready".into()],
        Some(_) => vec!["NotReady".into()],
        None => vec!["Unknown".into()],
    };
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().filter(|v| !v.is_empty()).map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |ty: &str| {
        array_at(obj, "/status/addresses")
            .iter()
            .find(|a| a["type"] == ty)
            .map_or("<none>".to_string(), |a| str_at(a, "/address").to_string())
    };
    let info = |field: &str| match str_at(obj, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name,
        json!(status.join(",")),
        json!(roles),
        age,
        json!(str_at(obj, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn event(obj: &Value, now: OffsetDateTime) -> Vec<Value> {
    let first = if parse_time(obj.get("firstTimestamp")).is_some() {
        since(obj.get("firstTimestamp"), now)
    } else {
        since(obj.get("eventTime"), now)
    };
    let mut last = if parse_time(obj.get("lastTimestamp")).is_some() {
        since(obj.get("lastTimestamp"), now)
    } else {
        first.clone()
    };
    let mut count = int_at(obj, "/count");
    if let Some(series) = obj.get("series").filter(|s| s.is_object()) {
        last = since(series.get("lastObservedTime"), now);
        count = int_at(series, "/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = str_at(obj, "/involvedObject/kind").to_lowercase();
    let target = match str_at(obj, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        str_at(obj, "/source/component"),
        str_at(obj, "/reportingComponent"),
    );
    let instance = first_non_empty(
        str_at(obj, "/source/host"),
        str_at(obj, "/reportingInstance"),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(str_at(obj, "/type")),
        json!(str_at(obj, "/reason")),
        json!(target),
        json!(str_at(obj, "/involvedObject/fieldPath")),
        json!(source),
        json!(str_at(obj, "/message").trim()),
        json!(first),
        json!(count),
        json!(str_at(obj, "/metadata/name")),
    ]
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
