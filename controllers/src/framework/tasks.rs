//! A pod as a Mesos task group (pure): one task per container, sharing the pod's executor id, with
//! the container's share of the pod's resources and the host ports it was given.

use super::demand::Demand;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value as Json};

/// Label keys carried by every task (and read back from status updates).
pub const LABEL_POD_UID: &str = "kumos.io/pod-uid";
/// The pod's `restartPolicy` (default `Always`), applied by the agent to each container.
pub const LABEL_RESTART_POLICY: &str = "kumos.io/restart-policy";
/// The container's liveness probe (Kubernetes JSON).
pub const LABEL_LIVENESS: &str = "kumos.io/liveness-probe";
/// The container's readiness probe (Kubernetes JSON).
pub const LABEL_READINESS: &str = "kumos.io/readiness-probe";
/// The container's ports, `[{"name", "containerPort", "hostPort"}]`, for probe ports.
pub const LABEL_PORTS: &str = "kumos.io/ports";

/// The task id of a pod's container.
pub fn task_id(pod_uid: &str, container: &str) -> String {
    format!("{pod_uid}.{container}")
}

/// The pod uid and container name of one of our task ids.
pub fn split_task_id(task_id: &str) -> Option<(&str, &str)> {
    task_id.split_once('.')
}

fn scalar(name: &str, v: f64, role: &str) -> Json {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": (v * 1000.0).round() / 1000.0},
           "allocation_info": {"role": role}})
}

/// The LAUNCH_GROUP operation for `pod` on `agent_id`, with `host_ports` assigned to the demand's
/// ports in order.
pub fn launch_group(
    pod: &Pod,
    demand: &Demand,
    host_ports: &[u16],
    agent_id: &str,
    framework_id: &str,
    role: &str,
) -> Json {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let grace_ns =
        spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64 * 1_000_000_000;
    let mut tasks = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let mut resources = vec![
            scalar("cpus", demand.cpus.get(i).copied().unwrap_or(0.1), role),
            scalar("mem", demand.mem.get(i).copied().unwrap_or(64.0), role),
        ];
        let wanted: Vec<_> = demand
            .ports
            .iter()
            .zip(host_ports)
            .filter(|(w, _)| w.container == c.name)
            .collect();
        let mine: Vec<u16> = wanted.iter().map(|(_, h)| **h).collect();
        if !mine.is_empty() {
            let ranges: Vec<Json> = mine.iter().map(|p| json!({"begin": p, "end": p})).collect();
            resources.push(
                json!({"name": "ports", "type": "RANGES", "ranges": {"range": ranges},
                                  "allocation_info": {"role": role}}),
            );
        }
        let argv: Vec<String> = c
            .command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .cloned()
            .collect();
        let mut command = json!({"shell": false});
        if let Some(first) = argv.first() {
            command["value"] = json!(first);
            command["arguments"] = json!(argv);
        }
        let vars: Vec<Json> = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some(json!({"name": e.name, "value": e.value.clone()?})))
            .collect();
        if !vars.is_empty() {
            command["environment"] = json!({ "variables": vars });
        }
        let mut task = json!({
            "name": c.name,
            "task_id": {"value": task_id(&uid, &c.name)},
            "agent_id": {"value": agent_id},
            "resources": resources,
            "command": command,
            "kill_policy": {"grace_period": {"nanoseconds": grace_ns}},
            "labels": {"labels": [
                {"key": LABEL_POD_UID, "value": uid},
                {"key": "kumos.io/pod-namespace", "value": ns},
                {"key": "kumos.io/pod-name", "value": name},
                {"key": "kumos.io/container", "value": c.name},
            ]},
        });
        if let Some(image) = &c.image {
            task["container"] = json!({"type": "DOCKER", "docker": {"image": image}});
        }
        let restart = spec.restart_policy.as_deref().unwrap_or("Always");
        let mut extra = vec![json!({"key": LABEL_RESTART_POLICY, "value": restart})];
        let probes = [
            (LABEL_LIVENESS, &c.liveness_probe),
            (LABEL_READINESS, &c.readiness_probe),
        ];
        for (key, probe) in probes {
            if let Some(value) = probe.as_ref().and_then(|p| serde_json::to_string(p).ok()) {
                extra.push(json!({"key": key, "value": value}));
            }
        }
        if !wanted.is_empty() {
            let ports: Vec<Json> = wanted
                .iter()
                .map(|(w, h)| json!({"name": w.name, "containerPort": w.container_port, "hostPort": h}))
                .collect();
            extra.push(json!({"key": LABEL_PORTS, "value": Json::Array(ports).to_string()}));
        }
        if let Some(labels) = task
            .pointer_mut("/labels/labels")
            .and_then(Json::as_array_mut)
        {
            labels.extend(extra);
        }
        tasks.push(task);
    }
    json!({
        "type": "LAUNCH_GROUP",
        "launch_group": {
            "executor": {
                "executor_id": {"value": uid},
                "framework_id": {"value": framework_id},
                "type": "DEFAULT",
                "name": format!("pod {ns}/{name}"),
            },
            "task_group": {"tasks": tasks},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::demand::demand;

    #[test]
    fn one_task_per_container_with_its_share() {
        let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1"},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [
            {"name": "app", "image": "busybox", "command": ["sh", "-c"], "args": ["echo hi"],
             "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 8080}],
             "livenessProbe": {"tcpSocket": {"port": 8080}},
             "resources": {"requests": {"cpu": "200m", "memory": "32Mi"}}},
            {"name": "side", "image": "busybox"},
        ]}}))
        .unwrap();
        let d = demand(&pod);
        let op = launch_group(&pod, &d, &[31005], "agent-1", "fw", "kubernetes");
        let tasks = op["launch_group"]["task_group"]["tasks"]
            .as_array()
            .unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(
            op["launch_group"]["executor"]["executor_id"]["value"],
            "u-1"
        );
        let app = &tasks[0];
        assert_eq!(app["task_id"]["value"], "u-1.app");
        assert_eq!(app["command"]["value"], "sh");
        assert_eq!(app["command"]["arguments"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(app["command"]["environment"]["variables"][0]["name"], "A");
        assert_eq!(app["resources"][0]["scalar"]["value"], 0.2);
        assert_eq!(app["resources"][1]["scalar"]["value"], 32.0);
        assert_eq!(app["resources"][2]["ranges"]["range"][0]["begin"], 31005);
        assert_eq!(
            app["kill_policy"]["grace_period"]["nanoseconds"],
            5_000_000_000u64
        );
        assert_eq!(tasks[1]["command"], json!({"shell": false}));
        let label = |t: &Json, k: &str| {
            t["labels"]["labels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["key"] == k)
                .map(|l| l["value"].as_str().unwrap().to_string())
        };
        assert_eq!(label(app, LABEL_RESTART_POLICY).as_deref(), Some("Always"));
        let live: Json = serde_json::from_str(&label(app, LABEL_LIVENESS).unwrap()).unwrap();
        assert_eq!(live["tcpSocket"]["port"], 8080);
        assert_eq!(label(app, LABEL_READINESS), None);
        let ports: Json = serde_json::from_str(&label(app, LABEL_PORTS).unwrap()).unwrap();
        assert_eq!(
            ports,
            json!([{"name": null, "containerPort": 8080, "hostPort": 31005}])
        );
        assert_eq!(label(&tasks[1], LABEL_PORTS), None);
        assert_eq!(split_task_id("u-1.app"), Some(("u-1", "app")));
    }
}
