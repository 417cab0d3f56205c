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
        "pods" => pod(obj, now),
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

/// Whether an init container is a sidecar (`restartPolicy: Always`).
fn is_restartable_init(spec_init: &[Value], name: &str) -> bool {
    spec_init.iter().any(|c| {
        c.get("name").and_then(Value::as_str) == Some(name)
            && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
    })
}

fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

/// Accumulates restart counts and the latest `lastState.terminated.finishedAt`.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<OffsetDateTime>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, "/restartCount");
        if let Some(t) = parse_time(status.pointer("/lastState/terminated/finishedAt")) {
            if self.last.is_none_or(|l| l < t) {
                self.last = Some(t);
            }
        }
    }
}

fn pod(obj: &Value, now: OffsetDateTime) -> Printed {
    let init_specs = array_at(obj, "/spec/initContainers");
    let conditions = array_at(obj, "/status/conditions");
    let phase = str_at(obj, "/status/phase");
    let total = array_at(obj, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
            .count();
    let mut ready = 0usize;
    let mut reason = match str_at(obj, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let init_statuses = array_at(obj, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        restarts.add(c);
        let sidecar = is_restartable_init(init_specs, str_at(c, "/name"));
        if sidecar {
            sidecar_restarts.add(c);
        }
        let terminated = c.pointer("/state/terminated");
        let waiting_reason = str_at(c, "/state/waiting/reason");
        if terminated.is_some() && int_at(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_some() {
            match str_at(c, "/state/terminated/reason") {
                "" => match int_at(c, "/state/terminated/signal") {
                    0 => format!("Init:ExitCode:{}", int_at(c, "/state/terminated/exitCode")),
                    s => format!("Init:Signal:{s}"),
                },
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", i, init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in array_at(obj, "/status/containerStatuses").iter().rev() {
            restarts.add(c);
            let waiting = str_at(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated");
            let term_reason = str_at(c, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_some() && !term_reason.is_empty() {
                reason = term_reason.to_string();
            } else if terminated.is_some() {
                reason = match int_at(c, "/state/terminated/signal") {
                    0 => format!("ExitCode:{}", int_at(c, "/state/terminated/exitCode")),
                    s => format!("Signal:{s}"),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    if deleting && str_at(obj, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => format!(
            "{} ({} ago)",
            restarts.count,
            super::human_duration(super::elapsed_seconds(last, now))
        ),
        _ => restarts.count.to_string(),
    };

    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = array_at(obj, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip"))
        .unwrap_or("");
    let gates = array_at(obj, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| c["type"] == g["conditionType"])
                    .is_some_and(|c| c["status"] == "True")
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };
    let cells = vec![
        json!(str_at(obj, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(since(obj.pointer("/metadata/creationTimestamp"), now)),
        json!(none(pod_ip)),
        json!(none(str_at(obj, "/spec/nodeName"))),
        json!(none(str_at(obj, "/status/nominatedNodeName"))),
        json!(gates_cell),
    ];
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}]),
        ),
        _ => None,
    };
    Printed { cells, conditions }
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
